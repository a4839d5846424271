# Token-tree verification, multi-drafter speculative decoding, adaptive gamma, the near-tie
# policy, and the retrieval (n-gram) datastore.
augur_add_test(eval_tree_test SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/eval_tree_test.cc DEPS augur_eval ${AUGUR_TEST_DEPS} LABELS unit)
augur_add_test(ngram_test SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/ngram_test.cc DEPS augur_eval ${AUGUR_TEST_DEPS} LABELS unit)
