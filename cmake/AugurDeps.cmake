# Dependency lookup. LibTorch comes from the PyPI torch wheel inside the project venv
# (scripts/setup.sh makes it); everything else from Debian packages.

# AUGUR_PYTHON: the Python whose torch package provides LibTorch. Default: the project venv;
# without one (a GPU host with its own torch, scripts/gpu_bundle.sh), the python3 on PATH if
# it imports torch. -DAUGUR_PYTHON=/path/to/python picks one explicitly.
set(_augur_python "${CMAKE_SOURCE_DIR}/.venv/bin/python")
if(NOT EXISTS "${_augur_python}")
  find_program(_augur_python3 NAMES python3 python)
  if(_augur_python3)
    execute_process(COMMAND "${_augur_python3}" -c "import torch" RESULT_VARIABLE _rc OUTPUT_QUIET ERROR_QUIET)
    if(_rc EQUAL 0)
      set(_augur_python "${_augur_python3}")
    endif()
  endif()
endif()
set(AUGUR_PYTHON "${_augur_python}" CACHE FILEPATH "Python whose torch package provides LibTorch (default: .venv, else python3 with torch)")
if(NOT Torch_DIR)
  if(NOT EXISTS "${AUGUR_PYTHON}")
    message(FATAL_ERROR "No Python with torch at ${AUGUR_PYTHON}. Run scripts/setup.sh first "
                        "(or pass -DAUGUR_PYTHON=/path/to/python with torch installed, or "
                        "-DTorch_DIR=<site-packages>/torch/share/cmake/Torch).")
  endif()
  execute_process(COMMAND "${AUGUR_PYTHON}" -c "import os,torch;print(os.path.join(os.path.dirname(torch.__file__),'share','cmake','Torch'))"
                  OUTPUT_VARIABLE _torch_dir OUTPUT_STRIP_TRAILING_WHITESPACE RESULT_VARIABLE _rc ERROR_QUIET)
  if(NOT _rc EQUAL 0)
    message(FATAL_ERROR "${AUGUR_PYTHON} cannot import torch. Run scripts/setup.sh.")
  endif()
  set(Torch_DIR "${_torch_dir}" CACHE PATH "LibTorch cmake directory" FORCE)
endif()

# The CUDA wheel's TorchConfig looks for the CUDA toolkit; it is only needed for linking
# torch's own CUDA libraries, which the wheel ships, so quiet its warnings.
set(CAFFE2_USE_CUDNN OFF CACHE BOOL "")
# Torch appends -gencode flags for its own arch list to CMAKE_CUDA_FLAGS; nvcc 13 has no
# sm_50, so pin the list to what augur targets (A100, H100/H200).
if(NOT DEFINED TORCH_CUDA_ARCH_LIST)
  set(TORCH_CUDA_ARCH_LIST "8.0;9.0")
endif()
find_package(Torch REQUIRED)
# TORCH_CXX_FLAGS carries the ABI define; the imported target already has it.

find_package(HDF5 REQUIRED COMPONENTS C CXX)
find_package(Eigen3 3.3 REQUIRED NO_MODULE)
find_package(absl REQUIRED)
find_package(nlohmann_json 3 REQUIRED)
find_package(GTest REQUIRED)
find_package(Threads REQUIRED)
find_package(OpenMP)
find_package(PkgConfig REQUIRED)
pkg_check_modules(SENTENCEPIECE REQUIRED IMPORTED_TARGET sentencepiece)

# HDF5 as one imported target.
add_library(augur_hdf5 INTERFACE)
target_include_directories(augur_hdf5 SYSTEM INTERFACE ${HDF5_INCLUDE_DIRS})
target_link_libraries(augur_hdf5 INTERFACE ${HDF5_CXX_LIBRARIES} ${HDF5_C_LIBRARIES})
target_compile_definitions(augur_hdf5 INTERFACE ${HDF5_DEFINITIONS})
