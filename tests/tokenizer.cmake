# Tokenizers: the byte-level BPE backend (unit), and its exactness against Hugging Face
# `tokenizers` and llama.cpp (interop).
augur_add_test(bpe_tokenizer_test SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/bpe_tokenizer_test.cc
               DEPS augur_core LABELS unit)

# Test support, not a gtest: encodes JSONL texts, writes ToTokenizerJson.
add_executable(tok_tool ${CMAKE_CURRENT_SOURCE_DIR}/tok_tool.cc)
target_link_libraries(tok_tool PRIVATE augur_core)
augur_setup(tok_tool)

augur_add_py_test(interop_bpe_tokenizer FILE tests/python/test_bpe_tokenizer.py LABELS interop)
set_property(TEST interop_bpe_tokenizer APPEND PROPERTY ENVIRONMENT "AUGUR_TOK_TOOL=$<TARGET_FILE:tok_tool>")
