# EAGLE-3 export (the feature-drafter issue, "Export for serving"): the layout, config.json,
# round trip and refusals (unit).
augur_add_test(eagle3_export_test SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/eagle3_export_test.cc
               DEPS augur_quantize ${AUGUR_TEST_DEPS} LABELS unit)
