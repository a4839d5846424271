# Chat templates: table-driven rendering of "messages" prompts (core/chat_template), checked
# against Jinja on real templates (tests/data/chat_templates/).
augur_add_test(chat_template_test SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/chat_template_test.cc
               DEPS augur_core LABELS unit)

# Test support, not a gtest: renders a conversation so that the Python test can compare it
# with transformers' Jinja rendering. core/chat_template is torch-free, so chat_tool is built
# from it alone: linked to augur_core it would load libtorch (~1 s) on each of the few hundred
# runs the Python test makes.
add_executable(chat_tool ${CMAKE_CURRENT_SOURCE_DIR}/chat_tool.cc
               ${CMAKE_SOURCE_DIR}/core/chat_template.cc)
target_include_directories(chat_tool PRIVATE ${CMAKE_SOURCE_DIR})
target_link_libraries(chat_tool PRIVATE nlohmann_json::nlohmann_json absl::status absl::statusor
                      absl::strings)
target_compile_options(chat_tool PRIVATE ${AUGUR_WARNINGS})

augur_add_py_test(interop_chat_template FILE tests/python/test_chat_template.py LABELS interop)
set_property(TEST interop_chat_template APPEND PROPERTY ENVIRONMENT "AUGUR_CHAT_TOOL=$<TARGET_FILE:chat_tool>")
