# Fuzzing (issue 14): the fuzz targets of tests/fuzz/ replayed on their seed corpora and on
# every input a fuzzer found (tests/fuzz/regress/<target>/), with the errors those must give.
# The libFuzzer harnesses themselves are built by scripts/fuzz.sh (clang, -DAUGUR_FUZZ=ON).
augur_add_test(fuzz_regress_test SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/fuzz_regress_test.cc
               ${CMAKE_CURRENT_SOURCE_DIR}/fuzz/fuzz_targets.cc
               DEPS augur_eval augur_quantize ${AUGUR_TEST_DEPS} LABELS unit)
