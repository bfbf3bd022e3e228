/* exec.c - child processes for the recipe driver: fork/exec of the sibling tool binaries
 * with their output appended to a log, wall time and peak resident memory from wait4()'s
 * rusage (ru_maxrss, KiB on Linux), and stop signals forwarded to the running child so an
 * interrupted tool dies too (its output is only ever renamed into place when complete). */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/time.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "../core/util.h"
#include "driver.h"

/* wait4 is a BSD/GNU call; declared here to stay within _DEFAULT_SOURCE's set */
pid_t wait4(pid_t pid, int *status, int options, struct rusage *rusage);

static volatile sig_atomic_t g_stop;
static volatile pid_t g_child;

static void on_signal(int sig) {
    g_stop = sig;
    if (g_child > 0) kill(g_child, sig);
}

void sq_drv_install_signals(void) {
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGHUP, &sa, NULL);
}

bool sq_drv_stopped(void) { return g_stop != 0; }

const char *sq_drv_bindir(void) {
    static char dir[PATH_MAX];
    if (dir[0]) return dir;
    const char *env = getenv("SQUISH_BIN");
    if (env && *env) { /* the tests' and make's way to point at a build */
        if (!realpath(env, dir)) snprintf(dir, sizeof dir, "%s", env);
        return dir;
    }
    ssize_t n = readlink("/proc/self/exe", dir, sizeof dir - 1);
    if (n <= 0) {
        snprintf(dir, sizeof dir, ".");
        return dir;
    }
    dir[n] = 0;
    char *slash = strrchr(dir, '/');
    if (slash) *slash = 0;
    return dir;
}

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

sq_status sq_drv_exec(const char *cwd, char *const argv[], const char *log_path, sq_proc *res) {
    memset(res, 0, sizeof *res);
    char exe[PATH_MAX + 64];
    int len = strchr(argv[0], '/') ? snprintf(exe, sizeof exe, "%s", argv[0])
                                   : snprintf(exe, sizeof exe, "%s/%s", sq_drv_bindir(), argv[0]);
    if (len < 0 || (size_t)len >= sizeof exe)
        return sq_errorf(SQ_ERR_ARG, "path of %s is too long", argv[0]);
    if (access(exe, X_OK) != 0)
        return sq_errorf(SQ_ERR_UNSUPPORTED, "%s is not installed beside squish (%s); build it with make", argv[0], exe);
    if (g_stop) return sq_errorf(SQ_ERR_INTERRUPTED, "interrupted");
    fflush(NULL);
    double t0 = now_s();
    pid_t pid = fork();
    if (pid < 0) return sq_errorf(SQ_ERR_IO, "fork: %s", strerror(errno));
    if (pid == 0) {
        signal(SIGINT, SIG_DFL);
        signal(SIGTERM, SIG_DFL);
        signal(SIGHUP, SIG_DFL);
        if (cwd && chdir(cwd) != 0) _exit(126);
        int fd = log_path ? open(log_path, O_WRONLY | O_CREAT | O_APPEND, 0644) : -1;
        if (fd >= 0) {
            dup2(fd, 1);
            dup2(fd, 2);
            close(fd);
        }
        execv(exe, argv);
        fprintf(stderr, "exec %s: %s\n", exe, strerror(errno));
        _exit(127);
    }
    g_child = pid;
    if (g_stop) kill(pid, (int)g_stop); /* a signal between fork and here */
    int status = 0;
    struct rusage ru;
    memset(&ru, 0, sizeof ru);
    while (wait4(pid, &status, 0, &ru) < 0) {
        if (errno != EINTR) {
            g_child = 0;
            return sq_errorf(SQ_ERR_IO, "wait for %s: %s", argv[0], strerror(errno));
        }
    }
    g_child = 0;
    res->wall_s = now_s() - t0;
    res->peak_rss_kb = ru.ru_maxrss;
    if (WIFEXITED(status)) {
        res->exit_code = WEXITSTATUS(status);
    } else {
        res->exit_code = -1;
        res->signal = WIFSIGNALED(status) ? WTERMSIG(status) : 0;
    }
    if (g_stop) return sq_errorf(SQ_ERR_INTERRUPTED, "interrupted");
    return SQ_OK;
}

/* Appends s to a growing buffer, single-quoted for a POSIX shell when needed. */
static bool append(char **buf, size_t *len, size_t *cap, const char *s, bool quote) {
    size_t need = *len + 4 * strlen(s) + 8;
    if (need > *cap) {
        size_t nc = need * 2;
        char *nb = realloc(*buf, nc);
        if (!nb) return false;
        *buf = nb;
        *cap = nc;
    }
    bool plain = *s != 0;
    for (const char *p = s; *p; p++)
        if (!strchr("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-./=:,+%@", *p)) plain = false;
    if (!quote || plain) {
        *len += (size_t)sprintf(*buf + *len, "%s", s);
        return true;
    }
    (*buf)[(*len)++] = '\'';
    for (const char *p = s; *p; p++) {
        if (*p == '\'') {
            memcpy(*buf + *len, "'\\''", 4);
            *len += 4;
        } else {
            (*buf)[(*len)++] = *p;
        }
    }
    (*buf)[(*len)++] = '\'';
    (*buf)[*len] = 0;
    return true;
}

char *sq_drv_cmdline(const char *cwd, char *const argv[]) {
    size_t len = 0, cap = 256;
    char *buf = malloc(cap);
    if (!buf) return NULL;
    buf[0] = 0;
    bool ok = true;
    if (cwd) ok = append(&buf, &len, &cap, "cd ", false) && append(&buf, &len, &cap, cwd, true) &&
                  append(&buf, &len, &cap, " && ", false);
    for (int i = 0; ok && argv[i]; i++) ok = (i == 0 || append(&buf, &len, &cap, " ", false)) && append(&buf, &len, &cap, argv[i], true);
    if (!ok) {
        free(buf);
        return NULL;
    }
    return buf;
}

void sq_drv_log_tail(const char *path, char *buf, size_t size) {
    buf[0] = 0;
    FILE *fp = fopen(path, "rb");
    if (!fp) return;
    char line[1024];
    while (fgets(line, sizeof line, fp)) {
        size_t n = strlen(line);
        while (n && (line[n - 1] == '\n' || line[n - 1] == '\r')) line[--n] = 0;
        if (n) snprintf(buf, size, "%s", line);
    }
    fclose(fp);
}
