# SPDX-License-Identifier: MIT
# remora_add_fuzzer(name src... [LINK lib...] [CORPUS dir] [LABELS label...])
# (STYLE.md §III.12, §II.6). Always builds fuzz_<name>_replay, a main() that
# feeds every file of CORPUS to LLVMFuzzerTestOneInput, registered as the
# CTest `fuzz/<name>-replay` (any compiler, any sanitizer preset). With
# REMORA_FUZZ=ON and clang it also builds fuzz_<name>, a libFuzzer binary
# (-fsanitize=fuzzer,address,undefined). The sources under test are listed
# among `src...` and compiled into each binary, so they carry libFuzzer's
# coverage instrumentation; libraries from LINK do not (libh2o never does).
option(REMORA_FUZZ "Build libFuzzer targets (clang only)" OFF)

set(REMORA_FUZZ_REPLAY_MAIN ${CMAKE_CURRENT_LIST_DIR}/../tests/fuzz/replay.c)

function(remora_add_fuzzer name)
  cmake_parse_arguments(PARSE_ARGV 1 arg "" "CORPUS" "LINK;LABELS")
  set(srcs ${arg_UNPARSED_ARGUMENTS})
  if(NOT arg_LABELS)
    set(arg_LABELS fuzz)
  endif()

  add_executable(fuzz_${name}_replay ${srcs} ${REMORA_FUZZ_REPLAY_MAIN})
  target_include_directories(fuzz_${name}_replay PRIVATE ${PROJECT_SOURCE_DIR})
  target_compile_definitions(fuzz_${name}_replay PRIVATE _GNU_SOURCE)
  target_link_libraries(fuzz_${name}_replay PRIVATE ${arg_LINK} remora_warnings)
  add_test(NAME fuzz/${name}-replay COMMAND fuzz_${name}_replay ${arg_CORPUS})
  set_tests_properties(fuzz/${name}-replay PROPERTIES LABELS "${arg_LABELS}" TIMEOUT 300
    PASS_REGULAR_EXPRESSION "replay: [1-9][0-9]* inputs, ok")

  if(REMORA_FUZZ)
    if(NOT CMAKE_C_COMPILER_ID STREQUAL "Clang")
      message(WARNING "REMORA_FUZZ needs clang (libFuzzer); fuzz_${name} not built")
      return()
    endif()
    set(flags -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=all
        -fno-omit-frame-pointer -g)
    add_executable(fuzz_${name} ${srcs})
    target_include_directories(fuzz_${name} PRIVATE ${PROJECT_SOURCE_DIR})
    target_compile_definitions(fuzz_${name} PRIVATE _GNU_SOURCE)
    target_compile_options(fuzz_${name} PRIVATE ${flags})
    target_link_options(fuzz_${name} PRIVATE ${flags})
    target_link_libraries(fuzz_${name} PRIVATE ${arg_LINK} remora_warnings)
  endif()
endfunction()
