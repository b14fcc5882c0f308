# Compiler standard and warnings for every mimic target (one INTERFACE target, not global flags).
add_library(mimic_flags INTERFACE)
target_compile_features(mimic_flags INTERFACE cxx_std_20)
target_compile_options(mimic_flags INTERFACE ${MIMIC_WARNING_FLAGS})
target_include_directories(mimic_flags INTERFACE ${CMAKE_SOURCE_DIR} ${CMAKE_BINARY_DIR})

# Executables land in <build>/bin (bin/mimic, bin/mimic-agent).
set(MIMIC_BIN_DIR ${CMAKE_BINARY_DIR}/bin)

# mimic_cc_library(NAME name HDRS ... SRCS ... DEPS ...) -> target mimic_<name>, alias mimic::<name>
function(mimic_cc_library)
  cmake_parse_arguments(M "" "NAME" "HDRS;SRCS;DEPS" ${ARGN})
  set(target mimic_${M_NAME})
  if(M_SRCS)
    add_library(${target} STATIC ${M_SRCS} ${M_HDRS})
    target_link_libraries(${target} PUBLIC mimic_flags ${M_DEPS})
  else()
    add_library(${target} INTERFACE)
    target_link_libraries(${target} INTERFACE mimic_flags ${M_DEPS})
  endif()
  add_library(mimic::${M_NAME} ALIAS ${target})
endfunction()

# mimic_cc_test(NAME name SRCS ... DEPS ... [LABELS ...] [TIMEOUT s]) -> gtest binary in ctest
function(mimic_cc_test)
  cmake_parse_arguments(M "" "NAME;TIMEOUT" "SRCS;DEPS;LABELS" ${ARGN})
  add_executable(${M_NAME} ${M_SRCS})
  target_link_libraries(${M_NAME} PRIVATE mimic_flags ${M_DEPS} GTest::gmock mimic::test_main)
  target_compile_definitions(${M_NAME} PRIVATE
      MIMIC_FIXTURES_DIR="${MIMIC_FIXTURES_DIR}"
      MIMIC_SOURCE_DIR="${CMAKE_SOURCE_DIR}"
      MIMIC_BINARY_DIR="${CMAKE_BINARY_DIR}")
  add_test(NAME ${M_NAME} COMMAND ${M_NAME})
  if(NOT M_TIMEOUT)
    set(M_TIMEOUT 300)
  endif()
  set_tests_properties(${M_NAME} PROPERTIES TIMEOUT ${M_TIMEOUT})
  if(M_LABELS)
    set_tests_properties(${M_NAME} PROPERTIES LABELS "${M_LABELS}")
  endif()
endfunction()

# mimic_layer(MAY_INCLUDE prefix... [TESTS_MAY_INCLUDE prefix...]) -- declares what the sources
# of this folder (and of subfolders without a rule of their own) may include among the governed
# prefixes (project folders and the third-party libraries listed in cmake/check_layers.sh);
# TESTS_MAY_INCLUDE adds what its test files (*_test.cc, test helpers) may include besides.
# layering_test checks every #include against it.
function(mimic_layer)
  cmake_parse_arguments(M "" "" "MAY_INCLUDE;TESTS_MAY_INCLUDE" ${ARGN})
  file(RELATIVE_PATH rel ${CMAKE_SOURCE_DIR} ${CMAKE_CURRENT_SOURCE_DIR})
  string(JOIN " " allowed ${M_MAY_INCLUDE})
  string(JOIN " " tests_allowed ${M_TESTS_MAY_INCLUDE})
  set_property(GLOBAL APPEND PROPERTY MIMIC_LAYERS "${rel}: ${allowed} | ${tests_allowed}")
endfunction()
