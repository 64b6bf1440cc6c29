# SPDX-License-Identifier: MIT
# REMORA_SANITIZE: "address,undefined" or "thread". The runtime annotates every
# stack switch for the chosen sanitizer (runtime/ctx.c), keyed on these defines.
if(REMORA_SANITIZE)
  add_compile_options(-fsanitize=${REMORA_SANITIZE} -fno-omit-frame-pointer -g)
  add_link_options(-fsanitize=${REMORA_SANITIZE})
  if(REMORA_SANITIZE MATCHES "address")
    add_compile_definitions(REMORA_ASAN=1)
    add_compile_options(-fno-sanitize-recover=undefined)
  endif()
  if(REMORA_SANITIZE MATCHES "thread")
    add_compile_definitions(REMORA_TSAN=1)
  endif()
endif()
