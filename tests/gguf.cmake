# GGUF export (issue 5, "Export"): block formats and file layout (unit), and the gguf Python
# package + llama.cpp (llama-cpp-python) reading augur's exports (interop).
augur_add_test(gguf_test SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/gguf_test.cc
               DEPS augur_quantize ${AUGUR_TEST_DEPS} LABELS unit)
augur_add_py_test(gguf_export FILE tests/python/test_gguf_export.py LABELS interop TIMEOUT 1200)
