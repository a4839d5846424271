// distill: placeholder translation unit until its issue lands (see DESIGN.md).
namespace augur { const char* distill_module_name() { return "distill"; } }
