# Helpers that every module uses: one library per folder, warnings on our own code,
# a shared precompiled LibTorch header, and one test registration function with labels.

set(AUGUR_WARNINGS -Wall -Wextra -Wno-unused-parameter)

# One object library owns the precompiled header; every torch-using target reuses it.
# Reuse needs identical flags, so all augur C++ targets get the same options via augur_setup().
add_library(augur_pch STATIC ${CMAKE_SOURCE_DIR}/cmake/pch_dummy.cc)
target_link_libraries(augur_pch PUBLIC torch)
target_compile_options(augur_pch PRIVATE $<$<COMPILE_LANGUAGE:CXX>:${AUGUR_WARNINGS}>)
if(AUGUR_PCH)
  target_precompile_headers(augur_pch PRIVATE ${CMAKE_SOURCE_DIR}/cmake/augur_pch.h)
endif()

function(augur_setup target)
  target_compile_options(${target} PRIVATE $<$<COMPILE_LANGUAGE:CXX>:${AUGUR_WARNINGS}>)
  if(AUGUR_PCH)
    target_precompile_headers(${target} REUSE_FROM augur_pch)
  endif()
endfunction()

# augur_add_library(name SOURCES ... DEPS ...)
function(augur_add_library name)
  cmake_parse_arguments(A "" "" "SOURCES;CUDA_SOURCES;DEPS" ${ARGN})
  set(_srcs ${A_SOURCES})
  if(AUGUR_CUDA)
    list(APPEND _srcs ${A_CUDA_SOURCES})
  endif()
  if(AUGUR_CUDA AND A_CUDA_SOURCES)
    augur_cuda_sources_no_pch(${A_CUDA_SOURCES})
  endif()
  add_library(${name} STATIC ${_srcs})
  target_include_directories(${name} PUBLIC ${CMAKE_SOURCE_DIR})
  target_link_libraries(${name} PUBLIC ${A_DEPS})
  if(AUGUR_CUDA)
    target_compile_definitions(${name} PUBLIC AUGUR_WITH_CUDA=1)
    set_target_properties(${name} PROPERTIES CUDA_SEPARABLE_COMPILATION OFF)
  endif()
  augur_setup(${name})
endfunction()

# augur_add_test(name SOURCES ... DEPS ... LABELS unit|model|interop|gpu [TIMEOUT s])
function(augur_add_test name)
  cmake_parse_arguments(A "" "TIMEOUT" "SOURCES;DEPS;LABELS" ${ARGN})
  add_executable(${name} ${A_SOURCES})
  target_link_libraries(${name} PRIVATE ${A_DEPS} GTest::gtest GTest::gtest_main)
  augur_setup(${name})
  add_test(NAME ${name} COMMAND ${name} --gtest_color=no)
  if(NOT A_TIMEOUT)
    set(A_TIMEOUT 600)
  endif()
  # One OpenMP thread per test: ctest runs tests in parallel, and more threads than free
  # cores make libgomp spin-wait at every barrier (measured: a test 23 s alone took 219 s).
  set_tests_properties(${name} PROPERTIES LABELS "${A_LABELS}" TIMEOUT ${A_TIMEOUT}
    ENVIRONMENT "AUGUR_SOURCE_DIR=${CMAKE_SOURCE_DIR};AUGUR_BIN=${CMAKE_BINARY_DIR}/bin/augur;AUGUR_PYTHON=${AUGUR_PYTHON};OMP_NUM_THREADS=1")
endfunction()

# augur_add_py_test(name FILE tests/python/x.py LABELS interop)
function(augur_add_py_test name)
  cmake_parse_arguments(A "" "FILE;TIMEOUT" "LABELS" ${ARGN})
  if(NOT A_TIMEOUT)
    set(A_TIMEOUT 900)
  endif()
  add_test(NAME ${name} COMMAND ${AUGUR_PYTHON} -m pytest -q -x ${CMAKE_SOURCE_DIR}/${A_FILE})
  set_tests_properties(${name} PROPERTIES LABELS "${A_LABELS}" TIMEOUT ${A_TIMEOUT}
    ENVIRONMENT "AUGUR_SOURCE_DIR=${CMAKE_SOURCE_DIR};AUGUR_BIN=${CMAKE_BINARY_DIR}/bin/augur;OMP_NUM_THREADS=1;PYTHONDONTWRITEBYTECODE=1")
endfunction()

# nvcc does not take the C++ precompiled header; keep CUDA sources free of torch includes.
function(augur_cuda_sources_no_pch)
  foreach(f ${ARGN})
    set_source_files_properties(${f} PROPERTIES SKIP_PRECOMPILE_HEADERS ON)
  endforeach()
endfunction()
