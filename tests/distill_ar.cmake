# AR drafter distillation and the trainer generalisation it uses (owned by the distill area).
augur_add_test(distill_ar_test SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/distill_ar_test.cc
               DEPS augur_distill augur_eval ${AUGUR_TEST_DEPS} LABELS unit)
