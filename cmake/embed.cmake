# SPDX-License-Identifier: MIT
# embed.cmake - run as `cmake -DIN=file -DOUT=file.c -DNAME=symbol -P embed.cmake`: writes a C
# file defining `const char NAME[]` with the bytes of IN (used for conf/default.yaml).
file(READ ${IN} hex HEX)
string(LENGTH "${hex}" hex_len)
string(REGEX REPLACE "([0-9a-f][0-9a-f])" "0x\\1," bytes "${hex}")
file(WRITE ${OUT} "/* Generated from ${IN} by cmake/embed.cmake; do not edit. */\n"
  "extern const char ${NAME}[];\n"
  "const char ${NAME}[] = {${bytes} 0x00};\n")
