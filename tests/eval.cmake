set(AUGUR_EVAL_TEST_DEPS augur_eval ${AUGUR_TEST_DEPS})
augur_add_test(eval_test SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/eval_test.cc DEPS ${AUGUR_EVAL_TEST_DEPS} LABELS unit)
