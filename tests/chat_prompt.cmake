# Tokenizer kinds behind one class (SentencePiece / byte-level BPE) and prompt objects
# ("prompt" text or "messages" chats rendered with the checkpoint's template).
augur_add_test(tokenizer_kinds_test SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/tokenizer_kinds_test.cc
               DEPS ${AUGUR_TEST_DEPS} LABELS unit)
