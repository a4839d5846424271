# The native CPU decode runtime (runtime/native_llama.h): logits vs the LibTorch model, fp32
# and quantized; its fp32 kernels vs their scalar references; the drafters on either engine.
augur_add_test(native_llama_test SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/native_llama_test.cc
               DEPS augur_quantize augur_eval ${AUGUR_TEST_DEPS} LABELS unit)
# The native engine as the speculative target: exact rows, tree compaction, hidden taps, and
# greedy speculative output equal to the same engine's target-only output.
augur_add_test(native_target_test SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/native_target_test.cc
               DEPS augur_eval ${AUGUR_TEST_DEPS} LABELS unit)
