# Quantization: formats and RTN, GPTQ, CPU kernels vs the reference, the batch invariance of
# every CPU linear kernel (fp32 too), quantized models and checkpoints (with the CLI's
# bad-input errors), fake-quant for QAT, and the CUDA kernels (gpu).
set(_quant_deps augur_quantize ${AUGUR_TEST_DEPS})
augur_add_test(quant_format_test SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/quant_format_test.cc DEPS ${_quant_deps} LABELS unit)
augur_add_test(quant_gptq_test SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/quant_gptq_test.cc DEPS ${_quant_deps} LABELS unit)
augur_add_test(quant_kernel_test SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/quant_kernel_test.cc DEPS ${_quant_deps} LABELS unit)
augur_add_test(kernel_invariance_test SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/kernel_invariance_test.cc DEPS ${_quant_deps} LABELS unit)
augur_add_test(quant_model_test SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/quant_model_test.cc DEPS ${_quant_deps} LABELS unit)
augur_add_test(quant_qat_test SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/quant_qat_test.cc DEPS ${_quant_deps} LABELS unit)
augur_add_test(quant_cuda_test SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/quant_cuda_test.cc DEPS ${_quant_deps} LABELS "unit;gpu")
