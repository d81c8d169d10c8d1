# The CUDA module: built when a CUDA compiler is found (AIM_CUDA=auto), required (on) or skipped
# (off). It links only the CUDA runtime, never libtorch; Python passes pointers and the stream.
string(TOLOWER "${AIM_CUDA}" _aim_cuda)
if(_aim_cuda STREQUAL "off")
  message(STATUS "aim: CUDA module disabled (AIM_CUDA=off)")
  return()
endif()

include(CheckLanguage)
check_language(CUDA)
if(NOT CMAKE_CUDA_COMPILER)
  if(_aim_cuda STREQUAL "on")
    message(FATAL_ERROR "aim: AIM_CUDA=on but no CUDA compiler found (put nvcc on PATH or set CUDACXX)")
  endif()
  message(STATUS "aim: no CUDA compiler found; building the CPU module only")
  return()
endif()

set(CMAKE_CUDA_ARCHITECTURES "${AIM_CUDA_ARCHITECTURES}")
enable_language(CUDA)
set(CMAKE_CUDA_STANDARD 17)
set(CMAKE_CUDA_STANDARD_REQUIRED ON)
find_package(CUDAToolkit REQUIRED)
message(STATUS "aim: building the CUDA module for architectures ${CMAKE_CUDA_ARCHITECTURES}")

pybind11_add_module(_native_cuda MODULE
  cuda/attention_fwd.cu
  cuda/attention_bwd.cu
  cuda/attention_dq_pass.cu
  cuda/value_maps.cu
  cuda/bindings_cuda.cpp)
target_include_directories(_native_cuda PRIVATE csrc/include cuda)
target_link_libraries(_native_cuda PRIVATE CUDA::cudart)
target_compile_options(_native_cuda PRIVATE
  $<$<COMPILE_LANGUAGE:CUDA>:-O3 --use_fast_math -lineinfo -Xptxas=-v>)
set_target_properties(_native_cuda PROPERTIES CUDA_SEPARABLE_COMPILATION OFF)

# Hopper kernels (wgmma, TMA: cuda/attention_fwd_sm90.cu, cuda/attention_bwd_sm90.cu): built only
# when the architecture list has a 90 entry, for sm_90a alone (wgmma and setmaxnreg need the
# arch-specific target; the -gencode form, not the -arch=sm_90a shorthand). Their own object
# library with CUDA_ARCHITECTURES OFF keeps CMake's per-target architecture flags off these files.
# AIM_HAVE_SM90 tells the dispatchers in attention_fwd.cu and attention_bwd.cu that the kernels
# exist; they still pick them only on compute capability 9.0.
set(_aim_sm90 OFF)
foreach(_aim_arch IN LISTS AIM_CUDA_ARCHITECTURES)
  if(_aim_arch MATCHES "^90")
    set(_aim_sm90 ON)
  endif()
endforeach()
if(_aim_sm90)
  add_library(aim_cuda_sm90 OBJECT cuda/attention_fwd_sm90.cu cuda/attention_bwd_sm90.cu)
  set_target_properties(aim_cuda_sm90 PROPERTIES
    CUDA_ARCHITECTURES OFF
    POSITION_INDEPENDENT_CODE ON
    CUDA_SEPARABLE_COMPILATION OFF)
  target_include_directories(aim_cuda_sm90 PRIVATE csrc/include cuda)
  target_compile_definitions(aim_cuda_sm90 PRIVATE AIM_HAVE_SM90=1)
  target_compile_options(aim_cuda_sm90 PRIVATE
    -gencode=arch=compute_90a,code=sm_90a -O3 --use_fast_math -lineinfo -Xptxas=-v)
  target_sources(_native_cuda PRIVATE $<TARGET_OBJECTS:aim_cuda_sm90>)
  target_compile_definitions(_native_cuda PRIVATE AIM_HAVE_SM90=1)
  message(STATUS "aim: Hopper kernels (sm_90a wgmma forward and backward) included")
endif()

install(TARGETS _native_cuda LIBRARY DESTINATION aim)
