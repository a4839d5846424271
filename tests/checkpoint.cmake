# Checkpoint I/O: safetensors files, HF model directories, and interop with transformers.
augur_add_test(safetensors_test SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/safetensors_test.cc
               DEPS ${AUGUR_TEST_DEPS} LABELS unit)
augur_add_test(checkpoint_test SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/checkpoint_test.cc
               DEPS ${AUGUR_TEST_DEPS} LABELS unit)

# Test support, not a gtest: writes random-init checkpoints and prints logits, so the Python
# interop tests do not depend on the augur CLI.
add_executable(ckpt_tool ${CMAKE_CURRENT_SOURCE_DIR}/ckpt_tool.cc)
target_link_libraries(ckpt_tool PRIVATE augur_core)
augur_setup(ckpt_tool)

augur_add_py_test(interop_checkpoint FILE tests/python/test_interop_checkpoint.py LABELS interop)
set_property(TEST interop_checkpoint APPEND PROPERTY ENVIRONMENT "AUGUR_CKPT_TOOL=$<TARGET_FILE:ckpt_tool>")
