/* SPDX-License-Identifier: MIT */
/*
 * test_validate.c - the config fixtures (STYLE.md §III.12): every file in
 * tests/data/conf/valid loads; every file in invalid/ starts with lines
 * "# expect: LINE: PATH: MESSAGE" and must produce exactly those problems
 * (any order), which is how the line numbers users see are tested.
 */
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <check.h>

#include "conf/conf.h"
#include "tests/unit/conf/suites.h"

#define MAX_FIXTURES 128

typedef struct fixtures {
    char names[MAX_FIXTURES][128];
    int count;
} fixtures_t;

static fixtures_t valid, invalid;

static int cmp_names(const void *a, const void *b)
{
    return strcmp(a, b);
}

/* Lists the .yaml files of DIR, sorted (run in the suite constructor, so each file is one loop
 * test). */
static void scan(fixtures_t *fx, const char *sub)
{
    char dir[512];
    snprintf(dir, sizeof(dir), "%s/%s", CFG_TEST_DATA_DIR, sub);
    DIR *d = opendir(dir);
    fx->count = 0;
    if (d == NULL) {
        return;
    }
    for (struct dirent *e; (e = readdir(d)) != NULL && fx->count < MAX_FIXTURES;) {
        size_t n = strlen(e->d_name);
        if (n > 5 && n < sizeof(fx->names[0]) && strcmp(e->d_name + n - 5, ".yaml") == 0) {
            memcpy(fx->names[fx->count++], e->d_name, n + 1);
        }
    }
    closedir(d);
    qsort(fx->names, (size_t)fx->count, sizeof(fx->names[0]), cmp_names);
}

static char *fixture_path(const char *sub, const char *name)
{
    static char path[768];
    snprintf(path, sizeof(path), "%s/%s/%s", CFG_TEST_DATA_DIR, sub, name);
    return path;
}

static char *describe(const cfg_errors_t *errs)
{
    char *text = NULL;
    size_t size = 0;
    FILE *out = open_memstream(&text, &size);
    cfg_errors_print(errs, "got", out);
    fclose(out);
    return text;
}

START_TEST(test_validate_fixture_dirs_are_not_empty)
{
    ck_assert_int_ge(valid.count, 2);
    ck_assert_int_ge(invalid.count, 12);
}

END_TEST

START_TEST(test_validate_valid_fixture_loads)
{
    const char *path = fixture_path("valid", valid.names[_i]);
    cfg_config_t *cfg = NULL;
    cfg_errors_t errs = {0};
    int rc = cfg_load_file(path, &cfg, &errs);
    char *got = describe(&errs);
    ck_assert_msg(rc == 0 && errs.count == 0, "%s:\n%s", path, got);
    free(got);
    ck_assert_ptr_nonnull(cfg);
    cfg_config_free(cfg);
}

END_TEST

typedef struct expect {
    unsigned line;
    char path[256];
    char message[512];
    bool matched;
} expect_t;

/* Reads the leading "# expect: LINE: PATH: MESSAGE" lines of `path`. */
static int read_expects(const char *path, expect_t *ex, int max)
{
    FILE *f = fopen(path, "r");
    ck_assert_msg(f != NULL, "cannot open %s", path);
    char line[1024];
    int n = 0;
    while (fgets(line, sizeof(line), f) != NULL) {
        if (strncmp(line, "# expect: ", 10) != 0) {
            if (line[0] == '#') {
                continue; /* a description comment before or between expects */
            }
            break;
        }
        ck_assert_int_lt(n, max);
        line[strcspn(line, "\n")] = '\0';
        char *p = line + 10, *end;
        ex[n].line = (unsigned)strtoul(p, &end, 10);
        ck_assert_msg(end != p && strncmp(end, ": ", 2) == 0, "bad expect line in %s", path);
        p = end + 2;
        char *sep = strstr(p, ": ");
        ck_assert_msg(sep != NULL, "bad expect line in %s", path);
        snprintf(ex[n].path, sizeof(ex[n].path), "%.*s", (int)(sep - p), p);
        snprintf(ex[n].message, sizeof(ex[n].message), "%s", sep + 2);
        ex[n].matched = false;
        n++;
    }
    fclose(f);
    return n;
}

START_TEST(test_validate_invalid_fixture_reports_exactly_its_expectations)
{
    const char *path = fixture_path("invalid", invalid.names[_i]);
    expect_t ex[32];
    int n = read_expects(path, ex, 32);
    ck_assert_msg(n > 0, "%s has no '# expect:' line", path);

    cfg_config_t *cfg = NULL;
    cfg_errors_t errs = {0};
    int rc = cfg_load_file(path, &cfg, &errs);
    char *got = describe(&errs);
    ck_assert_msg(rc == -1, "%s loaded", path);
    ck_assert_ptr_null(cfg);
    for (size_t i = 0; i < errs.count; i++) {
        const cfg_error_t *e = &errs.items[i];
        bool found = false;
        for (int j = 0; j < n && !found; j++) {
            if (!ex[j].matched && ex[j].line == e->line && strcmp(ex[j].path, e->path) == 0 &&
                strcmp(ex[j].message, e->message) == 0) {
                ex[j].matched = found = true;
            }
        }
        ck_assert_msg(found, "%s: unexpected problem %u: %s: %s\nall problems:\n%s", path, e->line,
                      e->path, e->message, got);
    }
    for (int j = 0; j < n; j++) {
        ck_assert_msg(ex[j].matched, "%s: missing problem %u: %s: %s\nall problems:\n%s", path,
                      ex[j].line, ex[j].path, ex[j].message, got);
    }
    free(got);
    cfg_errors_destroy(&errs);
}

END_TEST

Suite *suite_conf_validate(void)
{
    scan(&valid, "valid");
    scan(&invalid, "invalid");
    Suite *s = suite_create("conf/validate");
    TCase *tc = tcase_create("fixtures");
    tcase_add_test(tc, test_validate_fixture_dirs_are_not_empty);
    tcase_add_loop_test(tc, test_validate_valid_fixture_loads, 0, valid.count);
    tcase_add_loop_test(tc, test_validate_invalid_fixture_reports_exactly_its_expectations, 0,
                        invalid.count);
    suite_add_tcase(s, tc);
    return s;
}
