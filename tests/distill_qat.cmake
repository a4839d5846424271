# Quantization-aware distillation (--qat on distill ar|nat) and its quantized export (owned by
# the quantization area).
augur_add_test(distill_qat_test SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/distill_qat_test.cc
               DEPS augur_distill augur_quantize augur_eval ${AUGUR_TEST_DEPS} LABELS unit)
augur_add_py_test(quant_drafters FILE tests/python/test_quant_drafters.py LABELS interop)
