/* SPDX-License-Identifier: MIT */
/*
 * th_proc.c - children of the integration suites (th_proc.h). Every child is
 * recorded by pid in a per-test table that the checked teardown empties;
 * PR_SET_PDEATHSIG covers the tests that fail (Check _exit()s the test
 * process, skipping the teardown). Readiness is polled with a deadline:
 * remora-echo's "listening on" line, remora's GET /ready.
 */
#include "tests/support/th_proc.h"

#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <check.h>

#include "tests/support/th_http.h"

#define MAX_CHILDREN 32

static struct {
    pid_t pid;
    bool reaped;
} children[MAX_CHILDREN];

static int nchildren;
static char tmpdir[200];
static int log_seq;

int64_t th_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int64_t th_slack_ms(int64_t ms)
{
    const char *m = getenv("CK_TIMEOUT_MULTIPLIER");
    long k = m != NULL ? strtol(m, NULL, 10) : 1;
    return k > 1 ? ms * k : ms;
}

static bool env_flag(const char *name)
{
    const char *v = getenv(name);
    return v != NULL && v[0] != '\0' && strcmp(v, "0") != 0;
}

long th_scaled_count(long n)
{
    bool tsan = env_flag("REMORA_TSAN"), asan = env_flag("REMORA_ASAN");
#ifdef REMORA_TSAN
    tsan = true;
#endif
#ifdef REMORA_ASAN
    asan = true;
#endif
    long s = tsan ? n / 10 : asan ? n / 4 : n;
    return s < 1 ? 1 : s;
}

void th_sleep_ms(int64_t ms)
{
    struct timespec ts = {.tv_sec = ms / 1000, .tv_nsec = (ms % 1000) * 1000000};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
    }
}

int th_bind_loopback(int *port)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    ck_assert_int_ge(fd, 0);
    struct sockaddr_in sin = {.sin_family = AF_INET};
    sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof(sin);
    ck_assert_int_eq(bind(fd, (struct sockaddr *)&sin, sizeof(sin)), 0);
    ck_assert_int_eq(getsockname(fd, (struct sockaddr *)&sin, &len), 0);
    *port = ntohs(sin.sin_port);
    return fd;
}

int th_free_port(void)
{
    int port;
    close(th_bind_loopback(&port));
    return port;
}

const char *th_tmpdir(void)
{
    if (tmpdir[0] == '\0') {
        const char *base = getenv("TH_TMPDIR");
        if (base == NULL || base[0] == '\0') {
            base = "/tmp";
        }
        (void)mkdir(base, 0700);
        snprintf(tmpdir, sizeof(tmpdir), "%s/it-%d-XXXXXX", base, (int)getpid());
        ck_assert_msg(mkdtemp(tmpdir) != NULL, "mkdtemp %s: %s", tmpdir, strerror(errno));
    }
    return tmpdir;
}

void th_tmpfile_write(char *out, size_t out_size, const char *name, const char *text)
{
    snprintf(out, out_size, "%s/%s", th_tmpdir(), name);
    FILE *f = fopen(out, "w");
    ck_assert_msg(f != NULL, "fopen %s: %s", out, strerror(errno));
    ck_assert_int_eq(fputs(text, f) >= 0, 1);
    ck_assert_int_eq(fclose(f), 0);
}

const char *th_bin(const char *var)
{
    const char *p = getenv(var);
    ck_assert_msg(p != NULL && p[0] != '\0', "env %s is not set (run through ctest)", var);
    ck_assert_msg(access(p, X_OK) == 0, "%s=%s is not executable", var, p);
    return p;
}

/* ---- children ---- */

static void mark_reaped(pid_t pid)
{
    for (int i = 0; i < nchildren; i++) {
        if (children[i].pid == pid) {
            children[i].reaped = true;
        }
    }
}

void th_proc_spawn(th_proc_t *p, const char *name, char *const argv[])
{
    memset(p, 0, sizeof(*p));
    snprintf(p->name, sizeof(p->name), "%s", name);
    snprintf(p->log, sizeof(p->log), "%s/%s-%d.log", th_tmpdir(), name, log_seq++);
    ck_assert_int_lt(nchildren, MAX_CHILDREN);
    pid_t parent = getpid();
    fflush(NULL);
    pid_t pid = fork();
    ck_assert_msg(pid >= 0, "fork: %s", strerror(errno));
    if (pid == 0) {
        /* Die with the test process, whichever way it ends. */
        (void)prctl(PR_SET_PDEATHSIG, SIGKILL);
        if (getppid() != parent) {
            _exit(127);
        }
        sigset_t none;
        sigemptyset(&none);
        sigprocmask(SIG_SETMASK, &none, NULL);
        signal(SIGPIPE, SIG_DFL); /* the runner ignores it; ignored signals survive exec */
        int fd = open(p->log, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
        if (fd >= 0) {
            dup2(fd, STDOUT_FILENO);
            dup2(fd, STDERR_FILENO);
        }
        execv(argv[0], argv);
        dprintf(STDERR_FILENO, "th_proc: exec %s: %s\n", argv[0], strerror(errno));
        _exit(127);
    }
    p->pid = pid;
    children[nchildren].pid = pid;
    children[nchildren].reaped = false;
    nchildren++;
    fprintf(stderr, "th_proc: %s pid %d, log %s\n", name, (int)pid, p->log);
}

bool th_proc_wait(th_proc_t *p, int sig, int64_t timeout_ms)
{
    if (p->exited) {
        return true;
    }
    if (sig != 0) {
        (void)kill(p->pid, sig);
    }
    int64_t deadline = th_now_ms() + timeout_ms;
    for (int i = 0; i < 100000; i++) {
        int status;
        pid_t r = waitpid(p->pid, &status, WNOHANG);
        if (r == p->pid || (r < 0 && errno == ECHILD)) {
            p->exited = true;
            p->status = r == p->pid ? status : 0;
            mark_reaped(p->pid);
            return true;
        }
        if (th_now_ms() >= deadline) {
            return false;
        }
        th_sleep_ms(5);
    }
    return false;
}

bool th_proc_alive(th_proc_t *p)
{
    return !th_proc_wait(p, 0, 0);
}

bool th_proc_stop(th_proc_t *p)
{
    if (th_proc_wait(p, SIGTERM, th_slack_ms(3000))) {
        return true;
    }
    fprintf(stderr, "th_proc: %s pid %d ignored SIGTERM for 3 s: SIGKILL\n", p->name, (int)p->pid);
    return th_proc_wait(p, SIGKILL, th_slack_ms(3000));
}

long th_proc_rss_kib(pid_t pid)
{
    char path[64], line[256];
    snprintf(path, sizeof(path), "/proc/%d/status", (int)pid);
    FILE *f = fopen(path, "r");
    if (f == NULL) {
        return -1;
    }
    long kib = -1;
    while (fgets(line, sizeof(line), f) != NULL) {
        if (strncmp(line, "VmRSS:", 6) == 0) {
            kib = strtol(line + 6, NULL, 10);
            break;
        }
    }
    fclose(f);
    return kib;
}

static long task_switches(const char *task_dir, char *comm, size_t comm_size)
{
    char path[512], line[256];
    snprintf(path, sizeof(path), "%s/comm", task_dir);
    FILE *f = fopen(path, "r");
    snprintf(comm, comm_size, "?");
    if (f != NULL) {
        if (fgets(comm, (int)comm_size, f) != NULL) {
            comm[strcspn(comm, "\n")] = '\0';
        }
        fclose(f);
    }
    snprintf(path, sizeof(path), "%s/status", task_dir);
    f = fopen(path, "r");
    if (f == NULL) {
        return -1;
    }
    long n = 0;
    while (fgets(line, sizeof(line), f) != NULL) {
        if (strncmp(line, "voluntary_ctxt_switches:", 24) == 0) {
            n += strtol(line + 24, NULL, 10);
        } else if (strncmp(line, "nonvoluntary_ctxt_switches:", 27) == 0) {
            n += strtol(line + 27, NULL, 10);
        }
    }
    fclose(f);
    return n;
}

long th_proc_switches(pid_t pid, char *detail, size_t detail_size)
{
    char dir[64];
    snprintf(dir, sizeof(dir), "/proc/%d/task", (int)pid);
    DIR *d = opendir(dir);
    if (d == NULL) {
        return -1;
    }
    if (detail != NULL && detail_size > 0) {
        detail[0] = '\0';
    }
    long total = 0;
    size_t used = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        if (e->d_name[0] == '.') {
            continue;
        }
        char task_dir[320], comm[32];
        snprintf(task_dir, sizeof(task_dir), "%s/%s", dir, e->d_name);
        long n = task_switches(task_dir, comm, sizeof(comm));
        if (n < 0) {
            continue; /* the thread exited meanwhile */
        }
        total += n;
        if (detail != NULL && used < detail_size) {
            int w = snprintf(detail + used, detail_size - used, "%s%s/%s:%ld", used ? " " : "",
                             comm, e->d_name, n);
            used += w > 0 ? (size_t)w : 0;
        }
    }
    closedir(d);
    return total;
}

int th_tcp_sockets_on(int port)
{
    FILE *f = fopen("/proc/net/tcp", "r");
    if (f == NULL) {
        return -1;
    }
    char line[512];
    int n = 0;
    if (fgets(line, sizeof(line), f) == NULL) { /* the column titles */
        fclose(f);
        return -1;
    }
    const unsigned loopback = 0x0100007F, listen = 0x0A; /* as /proc/net/tcp prints them */
    while (fgets(line, sizeof(line), f) != NULL) {
        unsigned ip[2], p[2], state;
        if (sscanf(line, " %*d: %x:%x %x:%x %x", &ip[0], &p[0], &ip[1], &p[1], &state) == 5 &&
            state != listen &&
            ((ip[0] == loopback && (int)p[0] == port) ||
             (ip[1] == loopback && (int)p[1] == port))) {
            n++;
        }
    }
    fclose(f);
    return n;
}

char *th_proc_log(const th_proc_t *p)
{
    FILE *f = fopen(p->log, "r");
    size_t cap = 4096, n = 0;
    char *s = malloc(cap);
    ck_assert_ptr_nonnull(s);
    if (f != NULL) {
        size_t r;
        while ((r = fread(s + n, 1, cap - n - 1, f)) > 0) {
            n += r;
            if (cap - n - 1 == 0) {
                cap *= 2;
                s = realloc(s, cap);
                ck_assert_ptr_nonnull(s);
            }
        }
        fclose(f);
    }
    s[n] = '\0';
    return s;
}

void th_proc_dump_log(const th_proc_t *p, size_t max)
{
    char *s = th_proc_log(p);
    size_t n = strlen(s);
    fprintf(stderr, "---- %s (pid %d) log, last %zu bytes ----\n%s\n---- end ----\n", p->name,
            (int)p->pid, n < max ? n : max, n > max ? s + n - max : s);
    free(s);
}

static void remove_tmpdir(void)
{
    if (tmpdir[0] == '\0') {
        return;
    }
    DIR *d = opendir(tmpdir);
    if (d != NULL) {
        struct dirent *e;
        char path[512];
        while ((e = readdir(d)) != NULL) {
            if (strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, "..") != 0) {
                snprintf(path, sizeof(path), "%s/%s", tmpdir, e->d_name);
                (void)unlink(path);
            }
        }
        closedir(d);
    }
    (void)rmdir(tmpdir);
    tmpdir[0] = '\0';
}

void th_proc_teardown(void)
{
    int stuck = 0;
    for (int i = 0; i < nchildren; i++) {
        if (children[i].reaped) {
            continue;
        }
        th_proc_t p = {.pid = children[i].pid};
        snprintf(p.name, sizeof(p.name), "child");
        if (!th_proc_stop(&p)) {
            stuck++;
        }
    }
    nchildren = 0;
    ck_assert_msg(stuck == 0, "%d children could not be reaped", stuck);
    remove_tmpdir();
}

/* ---- remora-echo ---- */

/* Returns the port of the "remora-echo: listening on IP:PORT" line in `log`, or 0. */
static int echo_port_from_log(const char *log)
{
    const char *p = strstr(log, "remora-echo: listening on ");
    if (p == NULL || strchr(p, '\n') == NULL) {
        return 0;
    }
    const char *nl = strchr(p, '\n');
    const char *colon = NULL;
    for (const char *q = p; q < nl; q++) {
        if (*q == ':') {
            colon = q;
        }
    }
    return colon != NULL ? (int)strtol(colon + 1, NULL, 10) : 0;
}

/* One attempt; returns true once the echo announced its port. */
static bool echo_try_start(th_echo_t *e, const char *name, int port, const char *const *extra)
{
    char listen[64];
    snprintf(listen, sizeof(listen), "127.0.0.1:%d", port);
    const char *argv[32] = {th_bin("ECHO_BIN"), "--listen", listen, "--name", name};
    int argc = 5;
    for (int i = 0; extra != NULL && extra[i] != NULL && argc < 31; i++) {
        argv[argc++] = extra[i];
    }
    argv[argc] = NULL;
    th_proc_spawn(&e->proc, name, (char *const *)argv);
    int64_t deadline = th_now_ms() + th_slack_ms(5000);
    while (th_now_ms() < deadline) {
        char *log = th_proc_log(&e->proc);
        e->port = echo_port_from_log(log);
        free(log);
        if (e->port > 0) {
            return true;
        }
        if (!th_proc_alive(&e->proc)) {
            return false;
        }
        th_sleep_ms(10);
    }
    return false;
}

void th_echo_start_args(th_echo_t *e, const char *name, int port, const char *const *extra)
{
    /* A fixed port (a restart) may still be held for a moment: a few bounded retries. */
    int attempts = port != 0 ? 20 : 2;
    for (int i = 0; i < attempts; i++) {
        if (echo_try_start(e, name, port, extra)) {
            ck_assert_msg(port == 0 || e->port == port, "echo listens on %d, not %d", e->port,
                          port);
            return;
        }
        th_proc_dump_log(&e->proc, 2000);
        ck_assert(th_proc_stop(&e->proc));
        th_sleep_ms(100);
    }
    ck_abort_msg("remora-echo %s did not start (see its log above)", name);
}

void th_echo_start(th_echo_t *e, const char *name)
{
    th_echo_start_args(e, name, 0, NULL);
}

/* ---- remora ---- */

void th_remora_start_simple(th_remora_t *r, int echo_port, const char *listener_extra,
                            const char *route_extra, const char *cluster_extra)
{
    th_remora_start(r,
                    "listeners:\n"
                    "  - name: main\n"
                    "    address: 127.0.0.1:@LISTEN@\n"
                    "%s"
                    "    routes:\n"
                    "      - name: r\n"
                    "        match: { path_prefix: / }\n"
                    "%s"
                    "        backends: [ { name: b1, cluster: c1, weight: 1 } ]\n"
                    "clusters:\n"
                    "  - name: c1\n"
                    "    endpoints: [127.0.0.1:%d]\n"
                    "%s",
                    listener_extra ? listener_extra : "", route_extra ? route_extra : "", echo_port,
                    cluster_extra ? cluster_extra : "");
}

/* Returns `s` with every `key` replaced by `val` (malloc'd). */
static char *replace_all(const char *s, const char *key, const char *val)
{
    size_t kl = strlen(key), vl = strlen(val), n = 0;
    for (const char *p = strstr(s, key); p != NULL; p = strstr(p + kl, key)) {
        n++;
    }
    char *out = malloc(strlen(s) + n * vl + 1);
    ck_assert_ptr_nonnull(out);
    char *o = out;
    for (const char *p = s;;) {
        const char *q = strstr(p, key);
        if (q == NULL) {
            strcpy(o, p);
            break;
        }
        memcpy(o, p, (size_t)(q - p));
        o += q - p;
        memcpy(o, val, vl);
        o += vl;
        p = q + kl;
    }
    return out;
}

const char *th_remora_admin_token;

static bool remora_ready(th_remora_t *r)
{
    char auth[256] = "";
    if (th_remora_admin_token) {
        snprintf(auth, sizeof(auth), "Authorization: Bearer %s\r\n", th_remora_admin_token);
    }
    int64_t deadline = th_now_ms() + th_slack_ms(10000);
    while (th_now_ms() < deadline) {
        if (!th_proc_alive(&r->proc)) {
            return false;
        }
        th_resp_t resp;
        int rc = th_http_get(r->admin_port, "/ready", auth[0] ? auth : NULL, &resp);
        int status = resp.status;
        th_resp_free(&resp);
        if (rc == 0 && status == 200) {
            return true;
        }
        th_sleep_ms(20);
    }
    return false;
}

/* Returns the config th_remora_start writes for `body` on these ports (malloc'd). */
static char *remora_yaml(const char *body, int port, int admin_port)
{
    char p[16], a[16];
    snprintf(p, sizeof(p), "%d", port);
    snprintf(a, sizeof(a), "%d", admin_port);
    char *x = replace_all(body, "@LISTEN@", p);
    char *b = replace_all(x, "@ADMIN@", a);
    char *yaml = NULL;
    /* A test that sets `admin:` itself puts @ADMIN@ in its address. */
    char admin_line[64] = "";
    if (!strstr(b, "admin:")) {
        snprintf(admin_line, sizeof(admin_line), "admin: { address: 127.0.0.1:%d }\n", admin_port);
    }
    ck_assert_int_ge(asprintf(&yaml, "runtime: { procs: 2 }\n%s%s%s", admin_line,
                              strstr(b, "drain_timeout:") ? "" : "drain_timeout: 2s\n", b),
                     0);
    free(x);
    free(b);
    return yaml;
}

char *th_remora_yaml(const th_remora_t *r, const char *fmt, ...)
{
    char *body = NULL;
    va_list ap;
    va_start(ap, fmt);
    ck_assert_int_ge(vasprintf(&body, fmt, ap), 0);
    va_end(ap);
    char *yaml = remora_yaml(body, r->port, r->admin_port);
    free(body);
    return yaml;
}

static void remora_vstart(th_remora_t *r, const char *const *args, const char *fmt, va_list ap)
{
    char *body = NULL;
    ck_assert_int_ge(vasprintf(&body, fmt, ap), 0);
    memset(r, 0, sizeof(*r));
    for (int attempt = 0; attempt < 2; attempt++) {
        r->port = th_free_port();
        r->admin_port = th_free_port();
        char *yaml = remora_yaml(body, r->port, r->admin_port);
        char name[32];
        snprintf(name, sizeof(name), "remora-%d.yaml", log_seq);
        th_tmpfile_write(r->conf, sizeof(r->conf), name, yaml);
        free(yaml);
        const char *argv[32] = {th_bin("REMORA_BIN"), "-c", r->conf};
        int argc = 3;
        for (int i = 0; args != NULL && args[i] != NULL && argc < 31; i++) {
            argv[argc++] = args[i];
        }
        argv[argc] = NULL;
        th_proc_spawn(&r->proc, "remora", (char *const *)argv);
        if (remora_ready(r)) {
            free(body);
            return;
        }
        th_proc_dump_log(&r->proc, 4000);
        ck_assert(th_proc_stop(&r->proc));
    }
    free(body);
    ck_abort_msg("remora never answered GET /ready 200 (its log is above)");
}

void th_remora_start(th_remora_t *r, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    remora_vstart(r, NULL, fmt, ap);
    va_end(ap);
}

void th_remora_start_args(th_remora_t *r, const char *const *args, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    remora_vstart(r, args, fmt, ap);
    va_end(ap);
}

int th_remora_check(const char *path, char **out)
{
    char *cmd = NULL;
    ck_assert_int_ge(asprintf(&cmd, "'%s' --check -c '%s' 2>&1", th_bin("REMORA_BIN"), path), 0);
    fflush(NULL);
    FILE *p = popen(cmd, "r");
    free(cmd);
    ck_assert_msg(p != NULL, "popen remora --check: %s", strerror(errno));
    size_t cap = 4096, n = 0, k;
    char *s = malloc(cap);
    ck_assert_ptr_nonnull(s);
    while ((k = fread(s + n, 1, cap - n - 1, p)) > 0) {
        n += k;
        if (cap - n - 1 == 0) {
            cap *= 2;
            s = realloc(s, cap);
            ck_assert_ptr_nonnull(s);
        }
    }
    s[n] = '\0';
    int status = pclose(p);
    *out = s;
    return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}
