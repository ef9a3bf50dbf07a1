# The CUDA emulation (tests/cuda_emu/README.md), included by the top CMakeLists.txt when
# E2E_CUDA_EMULATION is ON: the emulated runtime, cuDNN handle and NCCL as libraries,
# and cuda_emu_sources(), which compiles .cu files unchanged (their launches rewritten by
# rewrite_launches.pl) as host C++ against them. Needs the CUDA, cuDNN and NCCL headers
# and libcudnn (its descriptors are the real ones), not nvcc and not a GPU.
enable_language(CXX)
set(CUDA_EMU_DIR ${CMAKE_CURRENT_LIST_DIR})
find_path(CUDA_EMU_CUDA_INCLUDE cuda_runtime.h HINTS ENV CUDA_HOME /usr/local/cuda PATH_SUFFIXES include)
find_path(CUDA_EMU_CUDNN_INCLUDE cudnn.h HINTS ENV CUDNN_ROOT /usr/local/cuda PATH_SUFFIXES include)
find_library(CUDA_EMU_CUDNN_LIBRARY NAMES cudnn libcudnn.so.9 HINTS ENV CUDNN_ROOT /usr/local/cuda
  PATH_SUFFIXES lib lib64)
find_path(CUDA_EMU_NCCL_INCLUDE nccl.h HINTS ENV NCCL_ROOT /usr/local/cuda PATH_SUFFIXES include)
find_program(CUDA_EMU_PERL perl REQUIRED)
if(NOT CUDA_EMU_CUDA_INCLUDE OR NOT CUDA_EMU_CUDNN_INCLUDE OR NOT CUDA_EMU_CUDNN_LIBRARY)
  message(FATAL_ERROR "E2E_CUDA_EMULATION needs the CUDA headers, cudnn.h and libcudnn (/usr/local/cuda)")
endif()
if(NOT E2E_NET_ONLY AND NOT CUDA_EMU_NCCL_INCLUDE)
  message(FATAL_ERROR "E2E_CUDA_EMULATION needs nccl.h (/usr/local/cuda/include) for dist/")
endif()

set(CUDA_EMU_CXX_FLAGS -Wall -Wextra -Wno-unused-parameter)
add_library(cuda_emu STATIC ${CUDA_EMU_DIR}/emu_device.cpp ${CUDA_EMU_DIR}/emu_memory.cpp
  ${CUDA_EMU_DIR}/emu_streams.cpp ${CUDA_EMU_DIR}/emu_kernel.cpp ${CUDA_EMU_DIR}/emu_cudnn.cpp
  ${CUDA_EMU_DIR}/emu_cudnn_algos.cpp)
target_include_directories(cuda_emu PUBLIC ${CUDA_EMU_DIR} ${CUDA_EMU_CUDA_INCLUDE} ${CUDA_EMU_CUDNN_INCLUDE})
get_filename_component(CUDA_EMU_CUDNN_DIR ${CUDA_EMU_CUDNN_LIBRARY} DIRECTORY)
target_link_libraries(cuda_emu PUBLIC ${CUDA_EMU_CUDNN_LIBRARY} Threads::Threads "-Wl,-rpath,${CUDA_EMU_CUDNN_DIR}")
target_compile_options(cuda_emu PRIVATE ${CUDA_EMU_CXX_FLAGS})
set_target_properties(cuda_emu PROPERTIES CXX_STANDARD 20 CXX_STANDARD_REQUIRED ON)
# the convolution loops' channel sums may be reassociated (vectorised); NaN still propagates
set_source_files_properties(${CUDA_EMU_DIR}/emu_cudnn.cpp PROPERTIES
  COMPILE_OPTIONS "-fassociative-math;-fno-signed-zeros;-fno-trapping-math")
if(NOT E2E_NET_ONLY)
  add_library(cuda_emu_nccl STATIC ${CUDA_EMU_DIR}/emu_nccl.cpp)
  target_include_directories(cuda_emu_nccl PUBLIC ${CUDA_EMU_NCCL_INCLUDE})
  target_link_libraries(cuda_emu_nccl PUBLIC cuda_emu MPI::MPI_C)
  target_compile_options(cuda_emu_nccl PRIVATE ${CUDA_EMU_CXX_FLAGS})
  target_compile_definitions(cuda_emu_nccl PRIVATE OMPI_SKIP_MPICXX=1 MPICH_SKIP_MPICXX=1)  # the C API only
  set_target_properties(cuda_emu_nccl PROPERTIES CXX_STANDARD 20 CXX_STANDARD_REQUIRED ON)
endif()

# cuda_emu_sources(TARGET FILE.cu...): the .cu files, rewritten, as host C++ sources of
# TARGET (cuda_emu.h force-included; no contraction into FMAs, as nvcc's _rn intrinsics)
function(cuda_emu_sources target)
  foreach(cu ${ARGN})
    get_filename_component(abs ${cu} ABSOLUTE)
    get_filename_component(name ${cu} NAME_WE)
    set(out ${CMAKE_CURRENT_BINARY_DIR}/cuda_emu/${name}.cpp)
    add_custom_command(OUTPUT ${out}
      COMMAND ${CMAKE_COMMAND} -E make_directory ${CMAKE_CURRENT_BINARY_DIR}/cuda_emu
      COMMAND ${CUDA_EMU_PERL} ${CUDA_EMU_DIR}/rewrite_launches.pl ${abs} ${out}
      DEPENDS ${abs} ${CUDA_EMU_DIR}/rewrite_launches.pl VERBATIM)
    target_sources(${target} PRIVATE ${out})
    set_source_files_properties(${out} PROPERTIES COMPILE_OPTIONS
      "-include;${CUDA_EMU_DIR}/cuda_emu.h;-ffp-contract=off;-Wall;-Wextra;-Wno-unused-parameter")
  endforeach()
  target_link_libraries(${target} PUBLIC cuda_emu)
  set_target_properties(${target} PROPERTIES CXX_STANDARD 20 CXX_STANDARD_REQUIRED ON)
endfunction()
