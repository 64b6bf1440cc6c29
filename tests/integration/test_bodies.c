/* SPDX-License-Identifier: MIT */
/*
 * test_bodies.c - integration/bodies: bodies streamed through remora both
 * ways - 64 MiB uploads (Content-Length and chunked) checked by remora-echo's
 * FNV-1a, 64 MiB downloads checked byte by byte, a close-delimited upstream
 * response, Expect: 100-continue, and bounded memory (VmRSS) for a slow
 * reader of a 1 GiB download, a 1 GiB upload and a 1 GiB chunked download
 * at full speed (the 1 GiB shrinks under sanitizers).
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <check.h>

#include "tests/integration/it.h"
#include "tests/integration/suites.h"

#define MIB (1024ULL * 1024ULL)
/* A multiple of the pattern's period (23), so one filled buffer repeats. */
#define BLOCK (23 * 16384)
/* The most remora's VmRSS may grow while a big body streams through it. */
#define RSS_GROWTH_MAX_KIB (16 * 1024)

static void start_pair(th_echo_t *e, th_remora_t *r)
{
    th_echo_start(e, "bodies");
    th_remora_start_simple(r, e->port, NULL, "        timeout: 60s\n", NULL);
}

/* Warms remora up with one request, then returns its VmRSS in KiB. */
static long warm_rss(th_remora_t *r)
{
    th_resp_t resp;
    it_get(r->port, "/warm", NULL, &resp);
    ck_assert_int_eq(resp.status, 200);
    th_resp_free(&resp);
    long rss = th_proc_rss_kib(r->proc.pid);
    ck_assert_int_gt(rss, 0);
    return rss;
}

/* Checks a finished upload: 200, and the byte count and FNV that remora-echo saw. */
static void check_upload_reply(th_conn_t *c, uint64_t size, uint64_t fnv)
{
    th_resp_t resp;
    int rc = th_http_read_response(c, &resp, false);
    ck_assert_msg(rc == 0, "upload response: %s", strerror(-rc));
    ck_assert_int_eq(resp.status, 200);
    char want[32];
    snprintf(want, sizeof(want), "%" PRIu64, size);
    it_assert_header(&resp, "x-echo-request-bytes", want);
    snprintf(want, sizeof(want), "%016" PRIx64, fnv);
    it_assert_header(&resp, "x-echo-request-fnv", want);
    th_resp_free(&resp);
}

/*
 * Streams `size` pattern bytes as a Content-Length body and checks the
 * checksum; returns the largest VmRSS growth of remora seen meanwhile (KiB).
 */
static long upload_length(th_remora_t *r, uint64_t size)
{
    long rss0 = warm_rss(r), grow = 0;
    th_conn_t c;
    it_open(&c, r->port);
    ck_assert_int_eq(th_conn_sendf(&c,
                                   "POST /upload HTTP/1.1\r\nHost: test\r\n"
                                   "Content-Length: %" PRIu64 "\r\n\r\n",
                                   size),
                     0);
    char *block = malloc(BLOCK);
    ck_assert_ptr_nonnull(block);
    th_pattern_fill(block, 0, BLOCK);
    uint64_t fnv = TH_FNV_INIT;
    int64_t next_sample = 0;
    for (uint64_t off = 0; off < size;) {
        size_t n = size - off < BLOCK ? (size_t)(size - off) : BLOCK;
        fnv = th_fnv1a(fnv, block, n);
        it_send(&c, block, n);
        off += n;
        if (th_now_ms() >= next_sample) {
            long rss = th_proc_rss_kib(r->proc.pid);
            grow = rss - rss0 > grow ? rss - rss0 : grow;
            next_sample = th_now_ms() + 50;
        }
    }
    free(block);
    check_upload_reply(&c, size, fnv);
    th_conn_close(&c);
    return grow;
}

START_TEST(test_bodies_upload_64mib_content_length)
{
    th_echo_t e;
    th_remora_t r;
    start_pair(&e, &r);
    (void)upload_length(&r, 64 * MIB);
}

END_TEST

START_TEST(test_bodies_upload_64mib_chunked)
{
    th_echo_t e;
    th_remora_t r;
    th_conn_t c;
    start_pair(&e, &r);
    it_open(&c, r.port);
    ck_assert_int_eq(th_conn_sendf(&c, "POST /upload HTTP/1.1\r\nHost: test\r\n"
                                       "Transfer-Encoding: chunked\r\n\r\n"),
                     0);
    /* Uneven chunk sizes, so chunk edges fall anywhere in remora's buffers. */
    static const size_t sizes[] = {1, 7, 1000, 16384, 65536, 100003, 3, 40000};
    const uint64_t total = 64 * MIB;
    char *buf = malloc(100003 + 64);
    ck_assert_ptr_nonnull(buf);
    uint64_t fnv = TH_FNV_INIT;
    size_t k = 0;
    for (uint64_t off = 0; off < total; k++) {
        size_t n = sizes[k % (sizeof(sizes) / sizeof(sizes[0]))];
        if (n > total - off) {
            n = (size_t)(total - off);
        }
        int h = snprintf(buf, 32, "%zx\r\n", n);
        th_pattern_fill(buf + h, off, n);
        fnv = th_fnv1a(fnv, buf + h, n);
        memcpy(buf + h + n, "\r\n", 2);
        it_send(&c, buf, (size_t)h + n + 2);
        off += n;
    }
    it_send(&c, "0\r\n\r\n", 5);
    free(buf);
    check_upload_reply(&c, total, fnv);
    th_conn_close(&c);
}

END_TEST

typedef struct pattern_sink {
    uint64_t off;
    ssize_t bad; /* stream offset of the first wrong byte, or -1 */
    pid_t pid;   /* remora, whose VmRSS is sampled every 50 ms meanwhile */
    long rss0, grow;
    int64_t next_sample;
} pattern_sink_t;

static bool check_pattern(const char *data, size_t n, void *arg)
{
    pattern_sink_t *s = arg;
    ssize_t i = th_pattern_find_mismatch(data, s->off, n);
    if (i >= 0 && s->bad < 0) {
        s->bad = (ssize_t)(s->off + (uint64_t)i);
    }
    s->off += n;
    if (th_now_ms() >= s->next_sample) {
        long rss = th_proc_rss_kib(s->pid);
        s->grow = rss - s->rss0 > s->grow ? rss - s->rss0 : s->grow;
        s->next_sample = th_now_ms() + 50;
    }
    return s->bad < 0;
}

/*
 * GETs a `size`-byte body with the extra header lines `extra` and checks every
 * byte; returns the largest VmRSS growth of remora seen meanwhile (KiB).
 */
static long download(th_remora_t *r, uint64_t size, const char *extra)
{
    long rss0 = warm_rss(r);
    th_conn_t c;
    th_resp_t resp;
    it_open(&c, r->port);
    ck_assert_int_eq(th_conn_sendf(&c,
                                   "GET /download HTTP/1.1\r\nHost: test\r\n"
                                   "x-echo-body-size: %" PRIu64 "\r\n%s\r\n",
                                   size, extra),
                     0);
    ck_assert_int_eq(th_http_read_head(&c, &resp, IT_IO_MS), 0);
    ck_assert_int_eq(resp.status, 200);
    if (resp.has_length) {
        ck_assert_int_eq(resp.content_length, size);
    }
    pattern_sink_t sink = {.bad = -1, .pid = r->proc.pid, .rss0 = rss0};
    int rc = th_http_read_body(&c, &resp, false, check_pattern, &sink, 0, IT_IO_MS);
    ck_assert_msg(sink.bad < 0, "byte %zd differs from the pattern", sink.bad);
    ck_assert_msg(rc == 0, "body: %s after %" PRIu64 " bytes", strerror(-rc), resp.body_bytes);
    ck_assert_int_eq(resp.body_bytes, size);
    th_resp_free(&resp);
    th_conn_close(&c);
    return sink.grow;
}

START_TEST(test_bodies_download_64mib_content_length)
{
    th_echo_t e;
    th_remora_t r;
    start_pair(&e, &r);
    download(&r, 64 * MIB, "");
}

END_TEST

START_TEST(test_bodies_download_64mib_chunked)
{
    th_echo_t e;
    th_remora_t r;
    start_pair(&e, &r);
    download(&r, 64 * MIB, "x-echo-chunked: 1\r\n");
}

END_TEST

START_TEST(test_bodies_close_delimited_response_arrives_complete)
{
    th_echo_t e;
    th_remora_t r;
    start_pair(&e, &r);
    /* For an HTTP/1.1 client remora may re-frame it (chunked); either way it is whole. */
    download(&r, 1000000, "x-echo-close-delimited: 1\r\n");
    download(&r, 1, "x-echo-close-delimited: 1\r\n");
}

END_TEST

START_TEST(test_bodies_expect_100_continue)
{
    th_echo_t e;
    th_remora_t r;
    th_conn_t c;
    th_resp_t resp;
    start_pair(&e, &r);
    it_open(&c, r.port);
    const char *head = "POST /expect HTTP/1.1\r\nHost: test\r\nContent-Length: 5\r\n"
                       "Expect: 100-continue\r\n\r\n";
    it_send(&c, head, strlen(head));
    /* The body is held back until the interim response arrives. */
    ck_assert_int_eq(th_http_read_head(&c, &resp, th_slack_ms(3000)), 0);
    ck_assert_int_eq(resp.status, 100);
    th_resp_free(&resp);
    it_send(&c, "hello", 5);
    ck_assert_int_eq(th_http_read_response(&c, &resp, false), 0);
    ck_assert_int_eq(resp.status, 200);
    it_assert_header(&resp, "x-echo-request-bytes", "5");
    char want[32];
    snprintf(want, sizeof(want), "%016" PRIx64, th_fnv1a(TH_FNV_INIT, "hello", 5));
    it_assert_header(&resp, "x-echo-request-fnv", want);
    th_resp_free(&resp);
    th_conn_close(&c);
}

END_TEST

START_TEST(test_bodies_slow_reader_keeps_memory_bounded)
{
    th_echo_t e;
    th_remora_t r;
    th_conn_t c;
    th_resp_t resp;
    start_pair(&e, &r);
    long rss0 = warm_rss(&r), grow = 0;
    it_open(&c, r.port);
    ck_assert_int_eq(th_conn_sendf(&c, "GET /slow HTTP/1.1\r\nHost: test\r\n"
                                       "x-echo-body-size: 1073741824\r\n\r\n"),
                     0);
    ck_assert_int_eq(th_http_read_head(&c, &resp, IT_IO_MS), 0);
    ck_assert_int_eq(resp.status, 200);
    th_resp_free(&resp);
    /* 64 KiB every 50 ms for 3 s: about 4 MiB of the 1 GiB. */
    static char buf[64 * 1024];
    uint64_t off = 0;
    int64_t end = th_now_ms() + 3000;
    for (int i = 0; i < 1000 && th_now_ms() < end; i++) {
        size_t want = sizeof(buf);
        for (size_t n = 0; n < want;) {
            ssize_t k = th_conn_recv(&c, buf + n, want - n, IT_IO_MS);
            ck_assert_int_gt(k, 0);
            n += (size_t)k;
        }
        ck_assert_int_eq(th_pattern_find_mismatch(buf, off, want), -1);
        off += want;
        long rss = th_proc_rss_kib(r.proc.pid);
        grow = rss - rss0 > grow ? rss - rss0 : grow;
        th_sleep_ms(50);
    }
    th_conn_abort(&c);
    ck_assert_msg(grow < RSS_GROWTH_MAX_KIB, "remora's VmRSS grew by %ld KiB (from %ld KiB)", grow,
                  rss0);
    /* Still serving after the reader went away. */
    it_get(r.port, "/after", NULL, &resp);
    ck_assert_int_eq(resp.status, 200);
    th_resp_free(&resp);
}

END_TEST

/* 1 GiB, a quarter under ASan, a tenth under TSan (about 3 s each way in a Debug build). */
static uint64_t gib_scaled(void)
{
    return (uint64_t)th_scaled_count(1024) * MIB;
}

START_TEST(test_bodies_upload_1gib_memory_bounded)
{
    th_echo_t e;
    th_remora_t r;
    start_pair(&e, &r);
    long grow = upload_length(&r, gib_scaled());
    ck_assert_msg(grow < RSS_GROWTH_MAX_KIB, "remora's VmRSS grew by %ld KiB", grow);
}

END_TEST

START_TEST(test_bodies_download_1gib_chunked_memory_bounded)
{
    th_echo_t e;
    th_remora_t r;
    start_pair(&e, &r);
    long grow = download(&r, gib_scaled(), "x-echo-chunked: 1\r\n");
    ck_assert_msg(grow < RSS_GROWTH_MAX_KIB, "remora's VmRSS grew by %ld KiB", grow);
}

END_TEST

Suite *suite_integration_bodies(void)
{
    Suite *s = suite_create("integration/bodies");
    TCase *tc = it_tcase(s, "streaming", 30);
    tcase_add_test(tc, test_bodies_upload_64mib_content_length);
    tcase_add_test(tc, test_bodies_upload_64mib_chunked);
    tcase_add_test(tc, test_bodies_download_64mib_content_length);
    tcase_add_test(tc, test_bodies_download_64mib_chunked);
    tcase_add_test(tc, test_bodies_close_delimited_response_arrives_complete);
    tcase_add_test(tc, test_bodies_expect_100_continue);
    tc = it_tcase(s, "backpressure", 30);
    tcase_add_test(tc, test_bodies_slow_reader_keeps_memory_bounded);
    tcase_add_test(tc, test_bodies_upload_1gib_memory_bounded);
    tcase_add_test(tc, test_bodies_download_1gib_chunked_memory_bounded);
    return s;
}
