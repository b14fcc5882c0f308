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

# mimic_link_static_deps(TARGET ROOT [SHARED_CXX_RUNTIME]) -- links the executable TARGET, whose code is ROOT (a
# mimic:: library) and its dependencies, with Debian's static archives of gRPC, protobuf and
# Abseil (and what they use: upb, re2, c-ares, address_sorting), toml++'s implementation
# (common/config/toml_impl.cc) and the static libstdc++ and libgcc instead of their shared
# libraries, with relocations packed (DT_RELR) and unused sections dropped. Why: loading ~60
# shared libraries makes the dynamic linker read every one's symbol and relocation tables at
# start, and each of those pages stays resident; an idle agent was ~5.8 MiB smaller linked this
# way (bench/README.md, "Agent idle RSS"). OpenSSL (libssl, libcrypto) stays the system's shared
# library, so its security updates reach the agent without a rebuild; so do libc, libzip, zlib.
# None of those loads a C++ library, so the process holds one copy of each (two Abseils or two
# libstdc++s would each keep their own state). With SHARED_CXX_RUNTIME (a binary that loads a C++
# shared library: mimic's yaml-cpp) libstdc++ and libgcc stay the system's shared ones, for the
# same reason. cmake/static_link_test.sh checks what the binary loads and defines.
# Sanitizer builds (MIMIC_SANITIZE) link as before: they look for bugs in mimic's code, and the
# sanitizers' runtimes expect the C++ runtime shared.
function(mimic_link_static_deps target root)
  cmake_parse_arguments(L "SHARED_CXX_RUNTIME" "" "" ${ARGN})
  if(MIMIC_SANITIZE)
    return()
  endif()
  # The archives are the ones a static link of grpc++ and protobuf names (their pkg-config
  # files), less the system libraries that stay shared.
  pkg_check_modules(MIMIC_GRPC_STATIC REQUIRED grpc++ protobuf)
  set(shared ssl crypto z dl rt m pthread atomic)
  set(archives "")
  foreach(n IN LISTS MIMIC_GRPC_STATIC_STATIC_LIBRARIES)
    if(n IN_LIST shared)
      continue()
    endif()
    find_library(MIMIC_STATIC_${n} NAMES lib${n}.a)
    if(NOT MIMIC_STATIC_${n})
      message(FATAL_ERROR "lib${n}.a is missing: install the -dev packages of deploy/install-deps.sh")
    endif()
    list(APPEND archives ${MIMIC_STATIC_${n}})
  endforeach()
  list(REMOVE_DUPLICATES archives)
  # Every project library under `root` goes in one group with the archives: the linker takes a
  # symbol from the first file that defines it, and rescans the group until nothing more in it
  # resolves, so no symbol of these libraries is left for a shared copy that CMake lists after
  # (which --as-needed then leaves out).
  set(seen "")
  set(queue ${root})
  while(queue)
    list(POP_FRONT queue t)
    string(REGEX REPLACE "^\\$<LINK_ONLY:(.*)>$" "\\1" t "${t}")
    if(NOT TARGET ${t} OR t IN_LIST seen)
      continue()
    endif()
    list(APPEND seen ${t})
    get_target_property(aliased ${t} ALIASED_TARGET)
    if(aliased)
      list(APPEND queue ${aliased})
      continue()
    endif()
    get_target_property(deps ${t} INTERFACE_LINK_LIBRARIES)
    if(deps)
      list(APPEND queue ${deps})
    endif()
  endwhile()
  set(own "")
  foreach(t IN LISTS seen)
    get_target_property(type ${t} TYPE)
    if(t MATCHES "^mimic_" AND type STREQUAL "STATIC_LIBRARY")
      list(APPEND own ${t})
    endif()
  endforeach()
  target_link_libraries(${target} PRIVATE mimic_toml_impl
                        -Wl,--start-group ${own} ${archives} -Wl,--end-group)
  if(NOT L_SHARED_CXX_RUNTIME)
    target_link_options(${target} PRIVATE -static-libstdc++ -static-libgcc)
  endif()
  target_link_options(${target} PRIVATE LINKER:--as-needed
                      LINKER:-z,pack-relative-relocs LINKER:--gc-sections LINKER:-O1)
endfunction()
