// eval: placeholder translation unit until its issue lands (see DESIGN.md).
namespace augur { const char* eval_module_name() { return "eval"; } }
