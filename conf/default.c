/* SPDX-License-Identifier: MIT */
/*
 * default.c - the embedded default config: conf/default.yaml, turned into the
 * array cfg__default_yaml at build time (cmake/embed.cmake), so `remora`
 * starts with no file at all.
 */
#include "conf/conf.h"

extern const char cfg__default_yaml[];

const char *cfg_default_yaml(void)
{
    return cfg__default_yaml;
}
