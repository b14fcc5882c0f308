# MIMIC_FUZZ=ON: every target compiled for libFuzzer with ASan and UBSan (clang only), and the
# fuzz targets of tests/fuzz built. tests/fuzz/run.sh configures such a build dir of its own.
option(MIMIC_FUZZ "Build the libFuzzer targets of tests/fuzz (clang; -fsanitize=fuzzer,address,undefined)" OFF)
if(MIMIC_FUZZ)
  if(NOT CMAKE_CXX_COMPILER_ID STREQUAL "Clang")
    message(FATAL_ERROR "MIMIC_FUZZ needs clang (-DCMAKE_CXX_COMPILER=clang++), not ${CMAKE_CXX_COMPILER_ID}")
  endif()
  if(MIMIC_SANITIZE)
    message(FATAL_ERROR "MIMIC_FUZZ brings its own sanitizers; leave MIMIC_SANITIZE empty")
  endif()
  add_compile_options(-fsanitize=fuzzer-no-link,address,undefined -fno-sanitize-recover=undefined
                      -fno-omit-frame-pointer)
  add_link_options(-fsanitize=address,undefined)
endif()
