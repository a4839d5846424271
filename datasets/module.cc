// datasets module anchor (keeps the library non-empty).
namespace augur { const char* datasets_module_name() { return "datasets"; } }
