# Every command on the real target (imported, and as transformers saved it), the GGUF round trip
# through llama.cpp.
augur_add_py_test(real_target FILE tests/python/test_real_target.py LABELS "model;interop" TIMEOUT 2400)
