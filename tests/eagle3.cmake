# EAGLE-3 export (the feature-drafter issue, "Export for serving"): the layout, config.json,
# round trip and refusals (unit); and llama.cpp converting augur's export and decoding with it
# on the real target, greedy output equal to its target-only decoding (model + interop: needs
# the venv, the SmolLM2 GGUF and llama.cpp's tools from scripts/build_llamacpp.sh, or
# AUGUR_LLAMA_CPP_DIR; skips with the reason when one is missing).
augur_add_test(eagle3_export_test SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/eagle3_export_test.cc
               DEPS augur_quantize ${AUGUR_TEST_DEPS} LABELS unit)
augur_add_py_test(eagle3_llamacpp FILE tests/python/test_eagle3_llamacpp.py LABELS "model;interop" TIMEOUT 2400)
