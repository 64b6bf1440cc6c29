/* SPDX-License-Identifier: MIT */
/*
 * units.c - strict parsers for the scalars of the YAML: durations ("150ms"),
 * sizes ("64KiB"), percentages ("0.5%"), plain integers and decimals, outcome
 * class names and host:port addresses. Strict means: no sign, no spaces, no
 * exponent, no trailing garbage, overflow is an error, and a duration needs
 * its unit (only "0" may stand alone).
 */
#include <arpa/inet.h>
#include <stdlib.h>
#include <string.h>

#include "conf/conf.h"
#include "conf/internal.h"

static bool is_digit(char c)
{
    return c >= '0' && c <= '9';
}

/* Reads one or more digits into *v; returns the count, or -1 on overflow. */
static int read_digits(const char **sp, uint64_t *v)
{
    const char *s = *sp;
    uint64_t acc = 0;
    int n = 0;
    while (is_digit(*s)) {
        if (__builtin_mul_overflow(acc, 10, &acc) ||
            __builtin_add_overflow(acc, (uint64_t)(*s - '0'), &acc)) {
            return -1;
        }
        s++;
        n++;
    }
    *sp = s;
    *v = acc;
    return n;
}

int cfg__parse_uint(const char *s, uint64_t max, uint64_t *out)
{
    uint64_t v;
    if (s == NULL || read_digits(&s, &v) <= 0 || *s != '\0' || v > max) {
        return -1;
    }
    *out = v;
    return 0;
}

/* Checks "D+(.D+)?" followed by `end` (or nothing) and returns its value. */
static int parse_decimal(const char *s, const char *end, double *out)
{
    const char *p = s;
    uint64_t ip;
    if (read_digits(&p, &ip) <= 0) {
        return -1;
    }
    if (*p == '.') {
        const char *f = ++p;
        while (is_digit(*p)) {
            p++;
        }
        if (p == f) {
            return -1; /* "1." */
        }
    }
    if (end == NULL ? *p != '\0' : strcmp(p, end) != 0) {
        return -1;
    }
    /* The syntax is checked; strtod (C locale: remora never calls setlocale) does the rounding. */
    *out = strtod(s, NULL);
    return 0;
}

int cfg__parse_number(const char *s, double *out)
{
    if (s == NULL) {
        return -1;
    }
    return parse_decimal(s, NULL, out);
}

int cfg_parse_percent(const char *s, double *out_ratio)
{
    double v;
    if (s == NULL || parse_decimal(s, "%", &v) != 0 || v > 100.0) {
        return -1;
    }
    *out_ratio = v / 100.0;
    return 0;
}

int cfg_parse_duration(const char *s, int64_t *out_ns)
{
    static const struct {
        const char *name;
        uint64_t ns;
    } units[] = {
        {"ns", 1},
        {"us", 1000},
        {"ms", 1000000},
        {"s", 1000000000},
        {"m", 60ull * 1000000000},
        {"h", 3600ull * 1000000000},
    };

    if (s == NULL) {
        return -1;
    }
    if (strcmp(s, "0") == 0) {
        *out_ns = 0;
        return 0;
    }
    const char *p = s;
    uint64_t ip, fp = 0;
    int fdigits = 0;
    if (read_digits(&p, &ip) <= 0) {
        return -1;
    }
    if (*p == '.') {
        p++;
        const char *f = p;
        fdigits = read_digits(&p, &fp);
        if (p == f || fdigits < 0 || fdigits > 9) {
            return -1; /* "1.s", or finer than a nanosecond */
        }
    }
    for (size_t i = 0; i < sizeof(units) / sizeof(units[0]); i++) {
        if (strcmp(p, units[i].name) != 0) {
            continue;
        }
        uint64_t ns, frac = 0, scale = 1;
        if (__builtin_mul_overflow(ip, units[i].ns, &ns)) {
            return -1;
        }
        for (int d = 0; d < fdigits; d++) {
            scale *= 10;
        }
        if (fdigits > 0) {
            /* fp/scale * unit without overflow: unit = q*scale + r, fp < scale <= 1e9. */
            uint64_t q = units[i].ns / scale, r = units[i].ns % scale;
            frac = fp * q + fp * r / scale;
        }
        if (__builtin_add_overflow(ns, frac, &ns) || ns > (uint64_t)INT64_MAX) {
            return -1;
        }
        *out_ns = (int64_t)ns;
        return 0;
    }
    return -1;
}

int cfg_parse_size(const char *s, uint64_t *out_bytes)
{
    static const struct {
        const char *name;
        uint64_t mult;
    } units[] = {
        {"", 1},
        {"B", 1},
        {"KiB", 1ull << 10},
        {"MiB", 1ull << 20},
        {"GiB", 1ull << 30},
        {"TiB", 1ull << 40},
        {"KB", 1000},
        {"MB", 1000 * 1000},
        {"GB", 1000 * 1000 * 1000},
        {"TB", 1000ull * 1000 * 1000 * 1000},
    };

    if (s == NULL) {
        return -1;
    }
    const char *p = s;
    uint64_t v;
    if (read_digits(&p, &v) <= 0) {
        return -1;
    }
    for (size_t i = 0; i < sizeof(units) / sizeof(units[0]); i++) {
        uint64_t bytes;
        if (strcmp(p, units[i].name) == 0) {
            if (__builtin_mul_overflow(v, units[i].mult, &bytes)) {
                return -1;
            }
            *out_bytes = bytes;
            return 0;
        }
    }
    return -1;
}

uint32_t cfg__parse_outcome(const char *s)
{
    static const struct {
        const char *name;
        uint32_t bit;
    } names[] = {
        {"5xx", CFG_OUTCOME_5XX},
        {"connect_failure", CFG_OUTCOME_CONNECT_FAILURE},
        {"timeout", CFG_OUTCOME_TIMEOUT},
        {"reset", CFG_OUTCOME_RESET},
    };

    for (size_t i = 0; s != NULL && i < sizeof(names) / sizeof(names[0]); i++) {
        if (strcmp(s, names[i].name) == 0) {
            return names[i].bit;
        }
    }
    return 0;
}

bool cfg__is_token(const char *s)
{
    /* RFC 9110 §5.6.2: tchar. */
    static const char extra[] = "!#$%&'*+-.^_`|~";
    if (s == NULL || *s == '\0') {
        return false;
    }
    for (; *s; s++) {
        char c = *s;
        bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || is_digit(c) ||
                  strchr(extra, c) != NULL;
        if (!ok) {
            return false;
        }
    }
    return true;
}

/* A DNS name: labels of [A-Za-z0-9_-], 1..63 chars, separated by single dots. */
static bool is_hostname(const char *s, size_t len)
{
    size_t label = 0;
    bool all_numeric = true;
    if (len == 0 || len > 253) {
        return false;
    }
    for (size_t i = 0; i < len; i++) {
        char c = s[i];
        if (c == '.') {
            if (label == 0) {
                return false;
            }
            label = 0;
            continue;
        }
        bool ok =
            (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || is_digit(c) || c == '-' || c == '_';
        if (!ok || ++label > 63) {
            return false;
        }
        all_numeric = all_numeric && is_digit(c);
    }
    /* "300.1.1.1" is a bad IPv4 address, not a name. */
    return label > 0 && !all_numeric;
}

const char *cfg__check_address(const char *s, bool numeric, bool port0)
{
    const char *colon;
    char host[256];
    size_t hlen;
    bool v6 = false;

    if (s == NULL || *s == '\0') {
        return "must be HOST:PORT";
    }
    if (s[0] == '[') {
        const char *close = strchr(s, ']');
        if (close == NULL || close[1] != ':') {
            return "must be [IPV6]:PORT";
        }
        hlen = (size_t)(close - s - 1);
        if (hlen >= sizeof(host)) {
            return "bad IPv6 address";
        }
        memcpy(host, s + 1, hlen);
        colon = close + 1;
        v6 = true;
    } else {
        colon = strrchr(s, ':');
        if (colon == NULL) {
            return "must be HOST:PORT";
        }
        hlen = (size_t)(colon - s);
        if (memchr(s, ':', hlen) != NULL) {
            return "IPv6 addresses need brackets: [ADDR]:PORT";
        }
        if (hlen >= sizeof(host)) {
            return "host name too long";
        }
        memcpy(host, s, hlen);
    }
    host[hlen] = '\0';

    uint64_t port;
    if (cfg__parse_uint(colon + 1, 65535, &port) != 0 || (port == 0 && !port0)) {
        return port0 ? "port must be 0..65535" : "port must be 1..65535";
    }
    unsigned char buf[sizeof(struct in6_addr)];
    if (v6) {
        return inet_pton(AF_INET6, host, buf) == 1 ? NULL : "bad IPv6 address";
    }
    if (inet_pton(AF_INET, host, buf) == 1) {
        return NULL;
    }
    if (numeric) {
        return "host must be a numeric IP address";
    }
    return is_hostname(host, hlen) ? NULL : "bad host name";
}
