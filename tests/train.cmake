# Training, sampling and generation (owned by the train area).
augur_add_test(sampling_test SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/sampling_test.cc
               DEPS ${AUGUR_TEST_DEPS} LABELS unit)
augur_add_test(train_test SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/train_test.cc
               DEPS ${AUGUR_TEST_DEPS} LABELS unit)
