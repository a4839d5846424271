// quantize: placeholder translation unit until its issue lands (see DESIGN.md).
namespace augur { const char* quantize_module_name() { return "quantize"; } }
