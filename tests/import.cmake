# GGUF import (the real-targets issue): the real SmolLM2-135M-Instruct GGUF against transformers'
# own GGUF loader, and bad GGUF files (labels model + interop: needs the model and the venv).
augur_add_py_test(import_gguf FILE tests/python/test_import_gguf.py LABELS "model;interop" TIMEOUT 1200)
set_property(TEST import_gguf APPEND PROPERTY ENVIRONMENT "AUGUR_CKPT_TOOL=$<TARGET_FILE:ckpt_tool>")
# Every command on the real target (imported, and as transformers saved it), the GGUF round trip
# through llama.cpp.
augur_add_py_test(real_target FILE tests/python/test_real_target.py LABELS "model;interop" TIMEOUT 2400)
