/* SPDX-License-Identifier: MIT */
/*
 * main.c - the remora binary: parses argv, loads and validates the config,
 * then runs the proxy on the runtime until a drain ends the process.
 *   remora [-c FILE [--watch]] [--check]   serve FILE (reloading it when it
 *                                changes), or the embedded default (or only validate)
 *   remora --print-default       print the embedded default config
 *   remora --version
 */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "proxy/proxy.h"

#define REMORA_VERSION "0.1.0"

typedef struct run_state {
    cfg_config_t *cfg;
    char *yaml;       /* the config's text, served by GET /config */
    const char *path; /* -c FILE, or NULL */
    bool watch;
    px_server_t srv;
    int exit_code;
} run_state_t;

static void usage(FILE *out)
{
    fprintf(out,
            "usage: remora [-c FILE [--watch]] [--check]\n"
            "       remora --print-default | --version\n"
            "  -c, --config FILE  the YAML config (shared/DESIGN.md); without it, the\n"
            "                     embedded default (proxy 0.0.0.0:10000, admin 127.0.0.1:9901)\n"
            "      --watch        reload FILE whenever it changes (also: SIGHUP, POST /reload)\n"
            "      --check        validate the config, print its problems, exit 0 or 1\n"
            "      --print-default  print the embedded default config\n");
}

static void main_g(void *arg)
{
    run_state_t *st = arg;
    char err[512];
    if (px_server_open(&st->srv, st->cfg, st->yaml, st->path, err, sizeof(err)) != 0) {
        fprintf(stderr, "remora: %s\n", err);
        st->exit_code = 1;
        return;
    }
    px_signals_start(&st->srv);
    if (st->watch) {
        px_watch_start(&st->srv);
    }
    rt_log(RT_LOG_INFO, "remora %s serving (%d procs)", REMORA_VERSION, rt_procs());
    /* Serve until a drain exits the process. */
    rt_chan_t *forever = rt_chan_new(1, 0);
    (void)rt_chan_recv(forever, NULL, RT_FOREVER);
}

int main(int argc, char **argv)
{
    static const struct option opts[] = {
        {"config", required_argument, NULL, 'c'},
        {"check", no_argument, NULL, 'k'},
        {"version", no_argument, NULL, 'V'},
        {"print-default", no_argument, NULL, 'D'},
        {"help", no_argument, NULL, 'h'},
        {"watch", no_argument, NULL, 'w'},
        {0, 0, 0, 0},
    };
    const char *file = NULL;
    bool check_only = false, watch = false;
    int opt;
    while ((opt = getopt_long(argc, argv, "c:h", opts, NULL)) != -1) {
        switch (opt) {
        case 'c':
            file = optarg;
            break;
        case 'k':
            check_only = true;
            break;
        case 'w':
            watch = true;
            break;
        case 'V':
            printf("remora %s\n", REMORA_VERSION);
            return 0;
        case 'D':
            fputs(cfg_default_yaml(), stdout);
            return 0;
        case 'h':
            usage(stdout);
            return 0;
        default:
            usage(stderr);
            return 2;
        }
    }
    if (optind != argc || (watch && !file)) {
        usage(stderr);
        return 2;
    }

    run_state_t st = {.path = file, .watch = watch};
    cfg_errors_t errs = {0};
    const char *name = file ? file : "(embedded default)";
    st.yaml = file ? px_read_file(file, NULL) : rt_xstrdup(cfg_default_yaml());
    int rc = st.yaml ? cfg_load_data(st.yaml, strlen(st.yaml), &st.cfg, &errs)
                     : cfg_load_file(file, &st.cfg, &errs); /* reports why it is unreadable */
    if (rc != 0) {
        cfg_errors_print(&errs, name, stderr);
        fprintf(stderr, "remora: %s: %zu problem%s\n", name, errs.count,
                errs.count == 1 ? "" : "s");
        cfg_errors_destroy(&errs);
        free(st.yaml);
        return 1;
    }
    if (check_only) {
        printf("remora: %s: ok\n", name);
        cfg_config_free(st.cfg);
        free(st.yaml);
        return 0;
    }

    px_signals_block();
    rt_config_t rcfg = {.procs = (int)st.cfg->runtime.procs};
    rc = rt_run(&rcfg, main_g, &st);
    if (rc != RT_OK) {
        fprintf(stderr, "remora: runtime: %s\n", rt_strerror(rc));
        return 1;
    }
    return st.exit_code;
}
