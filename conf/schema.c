/* SPDX-License-Identifier: MIT */
/*
 * schema.c - the libcyaml 1.3.1 schema of the YAML in DESIGN.md, mapped onto
 * the cfg_* structs of conf.h. Every key is optional here: required keys are
 * checked in validate.c, which reports all of them (libcyaml stops at the
 * first). Values that need strict parsing (durations, sizes, percentages,
 * integers with defaults) land in the loader-owned `*_text` fields.
 *
 * The schema is also data for two walks: suggest.c follows it along a YAML
 * path to list the keys valid there, and equal.c compares two structs field by
 * field through the cluster, filter and canary field arrays exported below.
 */
#include <malloc.h>
#include <stdlib.h>

#include "conf/internal.h"
#include "runtime/base.h"

#define OPT CYAML_FLAG_OPTIONAL
#define OPT_PTR (CYAML_FLAG_OPTIONAL | CYAML_FLAG_POINTER)
#define STR(key, type, member) CYAML_FIELD_STRING_PTR(key, OPT, type, member, 0, CYAML_UNLIMITED)
#define SEQ(key, type, member, entry)                                                              \
    CYAML_FIELD_SEQUENCE(key, OPT_PTR, type, member, entry, 0, CYAML_UNLIMITED)
#define SEQ_COUNT(key, type, member, count, entry)                                                 \
    CYAML_FIELD_SEQUENCE_COUNT(key, OPT_PTR, type, member, count, entry, 0, CYAML_UNLIMITED)

static const cyaml_schema_value_t string_entry = {
    CYAML_VALUE_STRING(CYAML_FLAG_POINTER, char, 0, CYAML_UNLIMITED),
};

/* ---- filters ---- */

static const cyaml_schema_field_t rate_limit_fields[] = {
    STR("rate", cfg_rate_limit_t, rate_text),
    STR("burst", cfg_rate_limit_t, burst_text),
    STR("key", cfg_rate_limit_t, key_text),
    STR("max_keys", cfg_rate_limit_t, max_keys_text),
    STR("mode", cfg_rate_limit_t, mode_text),
    STR("max_queue_time", cfg_rate_limit_t, max_queue_time_text),
    STR("related_route", cfg_rate_limit_t, related_route),
    CYAML_FIELD_END,
};

static const cyaml_schema_field_t circuit_breaker_fields[] = {
    STR("grade", cfg_circuit_breaker_t, grade_text),
    STR("threshold", cfg_circuit_breaker_t, threshold_text),
    STR("slow_call", cfg_circuit_breaker_t, slow_call_text),
    STR("window", cfg_circuit_breaker_t, window_text),
    STR("min_requests", cfg_circuit_breaker_t, min_requests_text),
    STR("open_for", cfg_circuit_breaker_t, open_for_text),
    SEQ_COUNT("exceptions", cfg_circuit_breaker_t, exceptions_text, exceptions_count,
              &string_entry),
    STR("fallback_cluster", cfg_circuit_breaker_t, fallback_cluster),
    CYAML_FIELD_END,
};

static const cyaml_schema_field_t fault_delay_fields[] = {
    STR("percent", struct cfg_fault_delay_raw, percent),
    STR("duration", struct cfg_fault_delay_raw, duration),
    CYAML_FIELD_END,
};

static const cyaml_schema_field_t fault_abort_fields[] = {
    STR("percent", struct cfg_fault_abort_raw, percent),
    STR("status", struct cfg_fault_abort_raw, status),
    CYAML_FIELD_END,
};

static const cyaml_schema_field_t fault_fields[] = {
    CYAML_FIELD_MAPPING_PTR("delay", OPT_PTR, cfg_fault_t, delay_raw, fault_delay_fields),
    CYAML_FIELD_MAPPING_PTR("abort", OPT_PTR, cfg_fault_t, abort_raw, fault_abort_fields),
    CYAML_FIELD_END,
};

static const cyaml_schema_field_t test_hooks_fields[] = {
    STR("header", cfg_test_hooks_t, header),
    STR("log", cfg_test_hooks_t, log),
    CYAML_FIELD_END,
};

const cyaml_schema_field_t cfg__filter_fields[] = {
    CYAML_FIELD_MAPPING_PTR("rate_limit", OPT_PTR, cfg_filter_t, rate_limit, rate_limit_fields),
    CYAML_FIELD_MAPPING_PTR("circuit_breaker", OPT_PTR, cfg_filter_t, circuit_breaker,
                            circuit_breaker_fields),
    CYAML_FIELD_MAPPING_PTR("fault", OPT_PTR, cfg_filter_t, fault, fault_fields),
    CYAML_FIELD_MAPPING_PTR("test_hooks", OPT_PTR, cfg_filter_t, test_hooks, test_hooks_fields),
    CYAML_FIELD_END,
};

static const cyaml_schema_value_t filter_entry = {
    CYAML_VALUE_MAPPING(CYAML_FLAG_DEFAULT, cfg_filter_t, cfg__filter_fields),
};

/* ---- routes ---- */

static const cyaml_schema_field_t header_match_fields[] = {
    STR("name", cfg_header_match_t, name),
    STR("value", cfg_header_match_t, value),
    CYAML_FIELD_END,
};

static const cyaml_schema_value_t header_match_entry = {
    CYAML_VALUE_MAPPING(CYAML_FLAG_DEFAULT, cfg_header_match_t, header_match_fields),
};

static const cyaml_schema_field_t match_fields[] = {
    STR("path_prefix", cfg_match_t, path_prefix),
    STR("path", cfg_match_t, path),
    STR("host", cfg_match_t, host),
    STR("method", cfg_match_t, method),
    SEQ("headers", cfg_match_t, headers, &header_match_entry),
    CYAML_FIELD_END,
};

static const cyaml_schema_field_t retries_fields[] = {
    CYAML_FIELD_UINT("attempts", OPT, cfg_retries_t, attempts),
    SEQ_COUNT("on", cfg_retries_t, on_text, on_text_count, &string_entry),
    CYAML_FIELD_END,
};

static const cyaml_schema_field_t backend_fields[] = {
    STR("name", cfg_backend_t, name),
    STR("cluster", cfg_backend_t, cluster),
    STR("weight", cfg_backend_t, weight_text),
    CYAML_FIELD_END,
};

static const cyaml_schema_value_t backend_entry = {
    CYAML_VALUE_MAPPING(CYAML_FLAG_DEFAULT, cfg_backend_t, backend_fields),
};

static const cyaml_schema_field_t promote_fields[] = {
    STR("step", cfg_promote_t, step_text),
    STR("interval", cfg_promote_t, interval_text),
    CYAML_FIELD_END,
};

const cyaml_schema_field_t cfg__canary_fields[] = {
    STR("backend", cfg_canary_t, backend),
    STR("baseline", cfg_canary_t, baseline),
    STR("window", cfg_canary_t, window_text),
    STR("min_requests", cfg_canary_t, min_requests_text),
    STR("max_p99_increase", cfg_canary_t, max_p99_increase_text),
    STR("max_error_rate", cfg_canary_t, max_error_rate_text),
    CYAML_FIELD_MAPPING_PTR("promote", OPT_PTR, cfg_canary_t, promote, promote_fields),
    STR("override_header", cfg_canary_t, override_header),
    STR("sticky", cfg_canary_t, sticky),
    CYAML_FIELD_END,
};

static const cyaml_schema_field_t route_fields[] = {
    STR("name", cfg_route_t, name),
    CYAML_FIELD_MAPPING("match", OPT, cfg_route_t, match, match_fields),
    STR("timeout", cfg_route_t, timeout_text),
    CYAML_FIELD_MAPPING_PTR("retries", OPT_PTR, cfg_route_t, retries_raw, retries_fields),
    SEQ("filters", cfg_route_t, filters, &filter_entry),
    SEQ("backends", cfg_route_t, backends, &backend_entry),
    CYAML_FIELD_MAPPING_PTR("canary", OPT_PTR, cfg_route_t, canary, cfg__canary_fields),
    CYAML_FIELD_END,
};

static const cyaml_schema_value_t route_entry = {
    CYAML_VALUE_MAPPING(CYAML_FLAG_DEFAULT, cfg_route_t, route_fields),
};

/* ---- listeners, clusters, the document ---- */

static const cyaml_schema_field_t listener_fields[] = {
    STR("name", cfg_listener_t, name),
    STR("address", cfg_listener_t, address),
    STR("read_timeout", cfg_listener_t, read_timeout_text),
    STR("write_timeout", cfg_listener_t, write_timeout_text),
    STR("idle_timeout", cfg_listener_t, idle_timeout_text),
    STR("max_connections", cfg_listener_t, max_connections_text),
    STR("max_header_bytes", cfg_listener_t, max_header_bytes_text),
    STR("max_headers", cfg_listener_t, max_headers_text),
    STR("max_request_body", cfg_listener_t, max_request_body_text),
    STR("access_log", cfg_listener_t, access_log),
    SEQ("routes", cfg_listener_t, routes, &route_entry),
    CYAML_FIELD_END,
};

static const cyaml_schema_value_t listener_entry = {
    CYAML_VALUE_MAPPING(CYAML_FLAG_DEFAULT, cfg_listener_t, listener_fields),
};

const cyaml_schema_field_t cfg__cluster_fields[] = {
    STR("name", cfg_cluster_t, name),
    SEQ("endpoints", cfg_cluster_t, endpoints, &string_entry),
    STR("max_connections", cfg_cluster_t, max_connections_text),
    STR("max_pending", cfg_cluster_t, max_pending_text),
    STR("pending_timeout", cfg_cluster_t, pending_timeout_text),
    STR("connect_timeout", cfg_cluster_t, connect_timeout_text),
    STR("dns_refresh", cfg_cluster_t, dns_refresh_text),
    CYAML_FIELD_END,
};

static const cyaml_schema_value_t cluster_entry = {
    CYAML_VALUE_MAPPING(CYAML_FLAG_DEFAULT, cfg_cluster_t, cfg__cluster_fields),
};

static const cyaml_schema_field_t runtime_fields[] = {
    CYAML_FIELD_UINT("procs", OPT, cfg_runtime_t, procs),
    CYAML_FIELD_END,
};

static const cyaml_schema_field_t admin_fields[] = {
    STR("address", cfg_admin_t, address),
    STR("token_file", cfg_admin_t, token_file),
    CYAML_FIELD_END,
};

static const cyaml_schema_field_t config_fields[] = {
    CYAML_FIELD_MAPPING_PTR("runtime", OPT_PTR, cfg_config_t, runtime_raw, runtime_fields),
    CYAML_FIELD_MAPPING_PTR("admin", OPT_PTR, cfg_config_t, admin_raw, admin_fields),
    STR("drain_timeout", cfg_config_t, drain_timeout_text),
    SEQ("listeners", cfg_config_t, listeners, &listener_entry),
    SEQ("clusters", cfg_config_t, clusters, &cluster_entry),
    CYAML_FIELD_END,
};

const cyaml_schema_value_t cfg__config_schema = {
    CYAML_VALUE_MAPPING(CYAML_FLAG_POINTER, cfg_config_t, config_fields),
};

/*
 * libcyaml allocates through this, so its frees and ours (free()) match.
 * libcyaml 1.3.1 grows a sequence one entry at a time; an allocator that
 * moves the block each time (ASan's always does, glibc's once its mmap
 * threshold has grown) then copies N entries N times. So a block that grows
 * gets room to double into, and growing within that room is free.
 */
static void *cyaml_xrealloc(void *ctx, void *ptr, size_t size)
{
    (void)ctx;
    if (size == 0) {
        free(ptr);
        return NULL;
    }
    if (ptr == NULL) {
        return rt_xmalloc(size);
    }
    size_t room = malloc_usable_size(ptr);
    if (size <= room) {
        return ptr;
    }
    return rt_xrealloc(ptr, size > 2 * room ? size : 2 * room);
}

const cyaml_config_t cfg__cyaml_free_config = {
    .log_fn = NULL,
    .mem_fn = cyaml_xrealloc,
    .log_level = CYAML_LOG_ERROR,
    .flags = CYAML_CFG_DEFAULT,
};
