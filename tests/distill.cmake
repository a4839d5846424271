# Distillation: KD losses, the teacher store, teacher-data generation (owned by the distill area).
set(AUGUR_DISTILL_TEST_DEPS augur_distill augur_eval ${AUGUR_TEST_DEPS})
augur_add_test(kd_loss_test SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/kd_loss_test.cc
               DEPS ${AUGUR_DISTILL_TEST_DEPS} LABELS unit)
augur_add_test(teacher_store_test SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/teacher_store_test.cc
               DEPS ${AUGUR_DISTILL_TEST_DEPS} LABELS unit)
augur_add_test(teacher_gen_test SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/teacher_gen_test.cc
               DEPS ${AUGUR_DISTILL_TEST_DEPS} LABELS unit)
