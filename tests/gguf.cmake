# GGUF export (issue 5, "Export"): block formats and file layout (unit), and the gguf Python
# package + llama.cpp (llama-cpp-python) reading augur's exports (interop).
augur_add_test(gguf_test SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/gguf_test.cc
               DEPS augur_quantize ${AUGUR_TEST_DEPS} LABELS unit)
augur_add_py_test(gguf_export FILE tests/python/test_gguf_export.py LABELS interop TIMEOUT 1200)

# GGUF import ("real targets"): the reader and dequantizers, on hand-made and malformed files
# (unit; also the SmolLM2 file when installed), and bit-exact against the gguf package (interop).
augur_add_test(gguf_reader_test SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/gguf_reader_test.cc
               DEPS augur_quantize ${AUGUR_TEST_DEPS} LABELS unit)
# Test support, not a gtest: prints a GGUF file's metadata and writes its tensors dequantized.
add_executable(gguf_tool ${CMAKE_CURRENT_SOURCE_DIR}/gguf_tool.cc)
target_link_libraries(gguf_tool PRIVATE augur_quantize nlohmann_json::nlohmann_json)
augur_setup(gguf_tool)
augur_add_py_test(gguf_dequant FILE tests/python/test_gguf_dequant.py LABELS interop)
set_property(TEST gguf_dequant APPEND PROPERTY ENVIRONMENT "AUGUR_GGUF_TOOL=$<TARGET_FILE:gguf_tool>")
