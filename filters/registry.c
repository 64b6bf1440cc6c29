/* SPDX-License-Identifier: MIT */
/*
 * registry.c - the explicit table of every filter built into remora, in the
 * order of cfg_filter_kind_t. Rate limiting and circuit breaking arrive with
 * their own issues; until then their YAML loads but building a chain that
 * uses them fails with a clear message (flt_chain_new).
 */
#include "filters/filter.h"

extern const flt_ops_t flt_fault_ops;
#ifdef REMORA_TEST_FILTERS
extern const flt_ops_t flt_test_hooks_ops;
#endif

static const flt_ops_t *const registry[] = {
    [CFG_FILTER_FAULT] = &flt_fault_ops,
#ifdef REMORA_TEST_FILTERS
    [CFG_FILTER_TEST_HOOKS] = &flt_test_hooks_ops,
#endif
};

const flt_ops_t *flt_lookup(cfg_filter_kind_t kind)
{
    if ((unsigned)kind >= RT_ARRAY_LEN(registry)) {
        return NULL;
    }
    return registry[kind];
}
