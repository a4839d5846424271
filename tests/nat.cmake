# NAT (parallel) drafter: layout, drafter, distillation (owned by the NAT area).
augur_add_test(nat_test SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/nat_test.cc
               DEPS augur_eval ${AUGUR_TEST_DEPS} LABELS unit)
augur_add_test(nat_distill_test SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/nat_distill_test.cc
               DEPS augur_distill augur_eval ${AUGUR_TEST_DEPS} LABELS unit)
