# SPDX-License-Identifier: MIT
# INTERFACE target remora_warnings: the warning set every target links; REMORA_WERROR adds -Werror.
add_library(remora_warnings INTERFACE)
target_compile_options(remora_warnings INTERFACE
  $<$<COMPILE_LANGUAGE:C>:-Wall -Wextra -Wpedantic -Wshadow -Wstrict-prototypes
   -Wmissing-prototypes -Wno-unused-parameter -Wno-gnu-zero-variadic-macro-arguments>)
if(CMAKE_C_COMPILER_ID STREQUAL "GNU")
  target_compile_options(remora_warnings INTERFACE $<$<COMPILE_LANGUAGE:C>:-Wno-pedantic-ms-format>)
endif()
if(REMORA_WERROR)
  target_compile_options(remora_warnings INTERFACE $<$<COMPILE_LANGUAGE:C>:-Werror>)
endif()
