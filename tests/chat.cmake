# Chat templates: table-driven rendering of "messages" prompts (core/chat_template), checked
# against Jinja on real templates (tests/data/chat_templates/).
augur_add_test(chat_template_test SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/chat_template_test.cc
               DEPS augur_core LABELS unit)

# Test support, not a gtest: renders a conversation so that the Python test can compare it
# with transformers' Jinja rendering.
add_executable(chat_tool ${CMAKE_CURRENT_SOURCE_DIR}/chat_tool.cc)
target_link_libraries(chat_tool PRIVATE augur_core)
augur_setup(chat_tool)

augur_add_py_test(interop_chat_template FILE tests/python/test_chat_template.py LABELS interop)
set_property(TEST interop_chat_template APPEND PROPERTY ENVIRONMENT "AUGUR_CHAT_TOOL=$<TARGET_FILE:chat_tool>")
