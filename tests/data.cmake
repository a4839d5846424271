# Data area: tokenizer, corpus inputs, HDF5 token stores (owned by the data engineer).
augur_add_test(data_tokenizer_test SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/data_tokenizer_test.cc
               DEPS ${AUGUR_TEST_DEPS} LABELS unit)
augur_add_test(data_corpus_test SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/data_corpus_test.cc
               DEPS ${AUGUR_TEST_DEPS} LABELS unit)
augur_add_test(data_token_store_test SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/data_token_store_test.cc
               DEPS ${AUGUR_TEST_DEPS} LABELS unit)
augur_add_py_test(data_interop_tokenizer FILE tests/python/test_interop_tokenizer.py LABELS interop)
augur_add_test(data_h5_test SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/data_h5_test.cc
               DEPS ${AUGUR_TEST_DEPS} LABELS unit)
