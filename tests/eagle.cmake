# The EAGLE-3 feature drafter (core/eagle_head.h, runtime/native_eagle.h, eval/eagle_drafter.h,
# distill/eagle_distill.h): training-time test = drafting, native = LibTorch, checkpoints,
# distillation, exact greedy and sampling speculative decoding.
augur_add_test(eagle_test SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/eagle_test.cc
               DEPS augur_distill augur_eval ${AUGUR_TEST_DEPS} LABELS unit)
