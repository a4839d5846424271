augur_add_test(model_test SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/model_test.cc DEPS ${AUGUR_TEST_DEPS} LABELS unit)
augur_add_test(config_test SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/config_test.cc DEPS ${AUGUR_TEST_DEPS} LABELS unit)
augur_add_test(device_test SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/device_test.cc DEPS ${AUGUR_TEST_DEPS} LABELS "unit;gpu")
