/*
 * The benchmark runner: every workload under every allocator, measured from
 * outside the process, reported as a markdown table and an SVG chart.
 *
 *     runner [run] [options] [WORKLOAD...]   the comparison (make bench)
 *     runner smoke [options] [WORKLOAD...]   tiny runs, checksums compared (make bench-smoke)
 *     runner instr [options]                 instructions per operation (make bench-instr)
 *     runner measure FILE PRELOAD CMD...     run CMD, write its wall, CPU and peak RSS to FILE
 *     runner list                            the workloads and the detected allocators
 *
 * Each run is a fork and exec with LD_PRELOAD naming the allocator (none for
 * glibc); wall time comes from CLOCK_MONOTONIC around it, CPU time (user +
 * system) and peak RSS from the rusage that wait4 returns. Allocators are
 * interleaved (A B C ... A B C) so that a slow minute on a shared machine hurts
 * them all alike, and the median of the repetitions is reported. A run whose
 * checksum differs from glibc's is a failure and never a result.
 *
 * The real-program workloads are scripts in bench/progs that follow a small
 * protocol (see bench/README.md): they get BENCH_* variables, run the program
 * under `runner measure` and print its measurements and a checksum.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <gnu/libc-version.h>
#include <limits.h>
#include <math.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/sysinfo.h>
#include <sys/utsname.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

/* Paths and messages are cut to their buffers on purpose. */
#pragma GCC diagnostic ignored "-Wformat-truncation"

#ifndef MULTIARCH
#define MULTIARCH "x86_64-linux-gnu"
#endif

enum { MAX_ALLOCS = 8, MAX_REPS = 64, MAX_WORKLOADS = 32 };

/* ------------------------------------------------------------ the tables */

/* How many threads a workload runs: the THREADS given, one, or at least two. */
enum { T_GIVEN, T_ONE, T_TWO };

typedef struct {
    const char *name;
    const char *script; /* bench/progs/<script>, or NULL for the workloads program */
    int threads;
    const char *about;
    /* Filled in at start-up. */
    int chosen, available;
    char note[160]; /* the program's version, or why it is skipped */
} workload_t;

static workload_t workloads[] = {
    { "churn", NULL, T_ONE, "small-object churn in one thread (8-512 B), interpreter-like", 0, 0, "" },
    { "mix", NULL, T_GIVEN, "long-lived tree and table, short-lived trees and lists", 0, 0, "" },
    { "server", NULL, T_GIVEN, "working sets, random replacement, batches freed by another thread", 0, 0, "" },
    { "prodcons", NULL, T_TWO, "producer/consumer ring: every block freed by another thread", 0, 0, "" },
    { "cache", NULL, T_TWO, "false sharing: small objects handed over and written hard", 0, 0, "" },
    { "realloc", NULL, T_GIVEN, "strings and vectors grown by realloc from bytes to MiB", 0, 0, "" },
    { "large", NULL, T_GIVEN, "64 KiB-64 MiB blocks touched sparsely, freed out of order", 0, 0, "" },
    { "aligned", NULL, T_GIVEN, "posix_memalign and aligned_alloc, 16 B-4 KiB alignments", 0, 0, "" },
    { "threads", NULL, T_GIVEN, "short-lived threads allocating and exiting", 0, 0, "" },
    { "fragment", NULL, T_ONE, "fragmenting pattern: peak and final RSS", 0, 0, "" },
    { "python", "python.sh", T_ONE, "python3 script: records, strings, trees, JSON (PYTHONMALLOC=malloc)", 0, 0, "" },
    { "sqlite", "sqlite.sh", T_ONE, "sqlite3: bulk insert, two indexes, update, delete, group by", 0, 0, "" },
    { "redis", "redis.sh", T_ONE, "redis-server on 127.0.0.1: Lua load plus redis-benchmark", 0, 0, "" },
    { "gcc", "gcc.sh", T_ONE, "gcc -O2 compiling a large generated C file", 0, 0, "" },
};
enum { NWORKLOADS = sizeof workloads / sizeof workloads[0] };

typedef struct {
    char name[32];
    char path[PATH_MAX]; /* absolute; empty for glibc */
    char version[96];
} alloc_t;

/* Peers looked for when no --alloc names them: Debian's package file names. */
static const struct {
    const char *name, *file;
} peers[] = {
    { "jemalloc", "libjemalloc.so.2" },
    { "mimalloc", "libmimalloc.so.2" },
    { "tcmalloc", "libtcmalloc_minimal.so.4" },
};
static const char *lib_dirs[] = {
    "/usr/local/lib", "/usr/lib/" MULTIARCH, "/lib/" MULTIARCH, "/usr/lib64", "/usr/lib",
};

/* One measured run. */
typedef struct {
    int ok;
    double wall, cpu;
    long maxrss_kb, final_rss_kb, live_kb;
    char checksum[48];
    char error[240];
    char said[160]; /* the last line on stderr, for a checksum mismatch's report */
} run_t;

/* One workload under one allocator: its runs and their medians. */
typedef struct {
    run_t run[MAX_REPS];
    int nrun;
    int failed;
    char why[400];
    double wall, cpu, rss_mib, spread, final_mib, live_mib;
} cell_t;

/* ------------------------------------------------------------- settings */

static struct {
    const char *mode;
    int quick, reps, threads, peers_in_smoke;
    double scale, timeout;
    const char *bin, *src, *out, *vmalloc, *vmalloc_version, *only_allocs;
    alloc_t alloc[MAX_ALLOCS];
    int nalloc, alloc_given;
    char tmp[PATH_MAX];
    char self[PATH_MAX];
    const char *selected[MAX_WORKLOADS];
    int nselected;
} cfg = {
    .reps = 0,
    .scale = 0,
    .timeout = 0,
    .bin = "build/bench",
    .src = "bench",
    .out = "bench/results",
    .vmalloc = "./libvmalloc.so",
    .vmalloc_version = "",
};

static void fail(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fputs("runner: ", stderr);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
    exit(2);
}

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static double tv_sec(struct timeval tv)
{
    return (double)tv.tv_sec + (double)tv.tv_usec / 1e6;
}

/* The text of a small file, or "" (a static buffer per call site is enough). */
static char *slurp(const char *path, char *buf, size_t cap)
{
    buf[0] = 0;
    int fd = open(path, O_RDONLY);
    if (fd < 0)
        return buf;
    size_t n = 0;
    ssize_t k;
    while (n + 1 < cap && (k = read(fd, buf + n, cap - 1 - n)) > 0)
        n += (size_t)k;
    buf[n] = 0;
    close(fd);
    return buf;
}

/* The first line printed by a shell command, or "" (for version strings). */
static void first_line(const char *cmd, char *out, size_t cap)
{
    out[0] = 0;
    FILE *p = popen(cmd, "r");
    if (!p)
        return;
    if (fgets(out, (int)cap, p))
        out[strcspn(out, "\r\n")] = 0;
    pclose(p);
}

static int rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st, (void)flag, (void)ftw;
    return remove(path);
}

static void rm_tree(const char *path)
{
    nftw(path, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static double median(double *v, int n)
{
    if (n == 0)
        return NAN;
    qsort(v, (size_t)n, sizeof *v, cmp_double);
    return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

/* ---------------------------------------------------------- allocators */

static void add_alloc(const char *name, const char *path)
{
    if (cfg.nalloc == MAX_ALLOCS)
        fail("too many allocators");
    alloc_t *a = &cfg.alloc[cfg.nalloc];
    snprintf(a->name, sizeof a->name, "%s", name);
    a->path[0] = 0;
    if (path && *path && !realpath(path, a->path))
        return; /* not there */
    cfg.nalloc++;
}

static int wanted(const char *name)
{
    if (!cfg.only_allocs || !strcmp(name, "glibc"))
        return 1;
    size_t n = strlen(name);
    for (const char *p = cfg.only_allocs; (p = strstr(p, name)); p += n)
        if ((p == cfg.only_allocs || p[-1] == ',') && (p[n] == 0 || p[n] == ','))
            return 1;
    return 0;
}

/* The version of the Debian package that owns a file, or "". */
static void package_version(const char *path, char *out, size_t cap)
{
    char cmd[PATH_MAX + 200];
    snprintf(cmd, sizeof cmd,
             "p=$(dpkg-query -S '%s' 2>/dev/null | head -n1 | cut -d: -f1) && [ -n \"$p\" ] && "
             "echo \"$p $(dpkg-query -W -f='${Version}' \"$p\" 2>/dev/null)\"",
             path);
    first_line(cmd, out, cap);
}

/* glibc always; vmalloc when built; each peer found in the library folders. */
static void detect_allocs(int with_peers)
{
    if (!cfg.alloc_given) {
        add_alloc("glibc", NULL);
        if (access(cfg.vmalloc, R_OK) == 0)
            add_alloc("vmalloc", cfg.vmalloc);
        else
            fprintf(stderr, "runner: %s is not built: vmalloc is left out\n", cfg.vmalloc);
        for (size_t i = 0; with_peers && i < sizeof peers / sizeof peers[0]; i++)
            for (size_t d = 0; d < sizeof lib_dirs / sizeof lib_dirs[0]; d++) {
                char path[PATH_MAX];
                snprintf(path, sizeof path, "%s/%s", lib_dirs[d], peers[i].file);
                if (access(path, R_OK) == 0) {
                    add_alloc(peers[i].name, path);
                    break;
                }
            }
    }
    /* Keep the wanted ones, glibc first. */
    int n = 0;
    for (int i = 0; i < cfg.nalloc; i++)
        if (wanted(cfg.alloc[i].name))
            cfg.alloc[n++] = cfg.alloc[i];
    cfg.nalloc = n;
    if (!n || strcmp(cfg.alloc[0].name, "glibc"))
        fail("glibc must be the first allocator: it is the reference");

    for (int i = 0; i < cfg.nalloc; i++) {
        alloc_t *a = &cfg.alloc[i];
        if (!strcmp(a->name, "glibc"))
            snprintf(a->version, sizeof a->version, "%s", gnu_get_libc_version());
        else if (!strcmp(a->name, "vmalloc"))
            snprintf(a->version, sizeof a->version, "%s", cfg.vmalloc_version);
        else
            package_version(a->path, a->version, sizeof a->version);
    }
}

/* Whether preloading a library really replaces malloc: ld.so only warns when a
 * preload fails, and the run would then measure glibc under another name. */
static int preload_works(const alloc_t *a, char *why, size_t cap)
{
    char cmd[3 * PATH_MAX], got[PATH_MAX];
    snprintf(cmd, sizeof cmd, "LD_PRELOAD='%s' '%s/workloads' which-malloc 2>&1", a->path, cfg.bin);
    first_line(cmd, got, sizeof got);
    char real[PATH_MAX];
    if (realpath(got, real) && !strcmp(real, a->path))
        return 1;
    snprintf(why, cap, "preloading %s gives malloc from '%s'", a->path, got);
    return 0;
}

/* ----------------------------------------------------------- one run */

static int run_seq;

/* Wait for a child at most `timeout` seconds (SIGCHLD is blocked, so it stays
 * pending for sigtimedwait); on time-out kill its process group. */
static int wait_child(pid_t pid, double timeout, int *status, struct rusage *ru)
{
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGCHLD);
    double deadline = now() + timeout;
    for (;;) {
        pid_t r = wait4(pid, status, WNOHANG, ru);
        if (r == pid)
            return 0;
        if (r < 0 && errno != EINTR)
            fail("wait4: %s", strerror(errno));
        double left = deadline - now();
        if (left <= 0) {
            kill(-pid, SIGKILL);
            kill(pid, SIGKILL);
            wait4(pid, status, 0, ru);
            return -1;
        }
        if (left > 1)
            left = 1;
        struct timespec ts = { (time_t)left, (long)((left - (double)(time_t)left) * 1e9) };
        sigtimedwait(&set, NULL, &ts);
    }
}

static int threads_for(const workload_t *w, int threads)
{
    if (w->threads == T_ONE)
        return 1;
    if (w->threads == T_TWO && threads < 2)
        return 2;
    return threads;
}

/* Parse what a workload printed: checksum=, final_rss_kb=, live_kb=, idle_s=
 * (time spent asleep on purpose, taken off the wall time) and a script's
 * "measured wall= cpu= maxrss_kb=" line, which replaces the numbers of the
 * whole script by those of the program it measured. */
static void parse_output(const char *text, run_t *r)
{
    const char *line = text;
    while (*line) {
        size_t len = strcspn(line, "\n");
        char buf[512];
        snprintf(buf, sizeof buf, "%.*s", (int)(len < 511 ? len : 511), line);
        char *p;
        if (!strncmp(buf, "checksum=", 9))
            snprintf(r->checksum, sizeof r->checksum, "%s", buf + 9);
        else if (!strncmp(buf, "final_rss_kb=", 13))
            r->final_rss_kb = atol(buf + 13);
        else if (!strncmp(buf, "live_kb=", 8))
            r->live_kb = atol(buf + 8);
        else if (!strncmp(buf, "idle_s=", 7))
            r->wall -= atof(buf + 7);
        else if (!strncmp(buf, "measured ", 9)) {
            if ((p = strstr(buf, "wall=")))
                r->wall = atof(p + 5);
            if ((p = strstr(buf, "cpu=")))
                r->cpu = atof(p + 4);
            if ((p = strstr(buf, "maxrss_kb=")))
                r->maxrss_kb = atol(p + 10);
        }
        line += len + (line[len] == '\n');
    }
}

/* The last non-empty line of a text, for error messages. */
static void last_line(const char *text, char *out, size_t cap)
{
    const char *end = text + strlen(text);
    while (end > text && (end[-1] == '\n' || end[-1] == ' '))
        end--;
    const char *start = end;
    while (start > text && start[-1] != '\n')
        start--;
    snprintf(out, cap, "%.*s", (int)(end - start), start);
}

/* Reports name files relative to the project root: cut the working folder
 * out of a message. */
static void hide_cwd(char *msg)
{
    char cwd[PATH_MAX];
    if (!getcwd(cwd, sizeof cwd - 1))
        return;
    strcat(cwd, "/");
    size_t n = strlen(cwd);
    for (char *p; (p = strstr(msg, cwd));)
        memmove(p, p + n, strlen(p + n) + 1);
}

/* Run a workload once under an allocator. check != 0 asks a script only
 * whether its program is there (exit 0 with its version, or 77). */
static int run_one(const workload_t *w, const alloc_t *a, double scale, int threads, int check,
                   run_t *r)
{
    char dir[PATH_MAX], outp[PATH_MAX + 8], errp[PATH_MAX + 8], work[PATH_MAX + 8];
    snprintf(dir, sizeof dir, "%s/run%d", cfg.tmp, run_seq++);
    snprintf(work, sizeof work, "%s/tmp", dir);
    snprintf(outp, sizeof outp, "%s/stdout", dir);
    snprintf(errp, sizeof errp, "%s/stderr", dir);
    if (mkdir(dir, 0700) || mkdir(work, 0700))
        fail("mkdir %s: %s", dir, strerror(errno));
    memset(r, 0, sizeof *r);
    r->final_rss_kb = r->live_kb = -1;

    char prog[PATH_MAX], script[PATH_MAX], tbuf[16], sbuf[32];
    snprintf(prog, sizeof prog, "%s/workloads", cfg.bin);
    snprintf(tbuf, sizeof tbuf, "%d", threads_for(w, threads));
    snprintf(sbuf, sizeof sbuf, "%g", scale);
    if (w->script)
        snprintf(script, sizeof script, "%s/progs/%s", cfg.src, w->script);

    double t0 = now();
    pid_t pid = fork();
    if (pid < 0)
        fail("fork: %s", strerror(errno));
    if (pid == 0) {
        sigset_t none;
        sigemptyset(&none);
        sigprocmask(SIG_SETMASK, &none, NULL);
        setpgid(0, 0);
        int o = open(outp, O_WRONLY | O_CREAT | O_TRUNC, 0600);
        int e = open(errp, O_WRONLY | O_CREAT | O_TRUNC, 0600);
        int in = open("/dev/null", O_RDONLY);
        if (o < 0 || e < 0 || in < 0)
            _exit(126);
        dup2(in, 0), dup2(o, 1), dup2(e, 2);
        if (!w->script) {
            if (a->path[0])
                setenv("LD_PRELOAD", a->path, 1);
            else
                unsetenv("LD_PRELOAD");
            execl(prog, prog, w->name, tbuf, sbuf, (char *)NULL);
        } else {
            char path[PATH_MAX + 16];
            unsetenv("LD_PRELOAD");
            setenv("BENCH_PRELOAD", a->path, 1);
            setenv("BENCH_ALLOC", a->name, 1);
            setenv("BENCH_SCALE", sbuf, 1);
            setenv("BENCH_THREADS", tbuf, 1);
            setenv("BENCH_TMP", work, 1);
            setenv("BENCH_RUNNER", cfg.self, 1);
            if (realpath(prog, path))
                setenv("BENCH_WORKLOADS", path, 1);
            snprintf(path, sizeof path, "%s/libglibc-shim.so", cfg.bin);
            char shim[PATH_MAX];
            if (realpath(path, shim))
                setenv("BENCH_GLIBC_SHIM", shim, 1);
            if (check)
                setenv("BENCH_CHECK", "1", 1);
            else
                unsetenv("BENCH_CHECK");
            execlp("bash", "bash", script, (char *)NULL);
        }
        _exit(127);
    }
    int status;
    struct rusage ru;
    int timed_out = wait_child(pid, check ? 30 : cfg.timeout, &status, &ru);
    double t1 = now();
    if (w->script)
        kill(-pid, SIGKILL); /* anything the script left behind */

    static char out[1 << 16], err[1 << 14];
    slurp(outp, out, sizeof out);
    slurp(errp, err, sizeof err);
    r->wall = t1 - t0;
    r->cpu = tv_sec(ru.ru_utime) + tv_sec(ru.ru_stime);
    r->maxrss_kb = ru.ru_maxrss;
    parse_output(out, r);

    char tail[200];
    last_line(err[0] ? err : out, tail, sizeof tail);
    last_line(err, r->said, sizeof r->said);
    hide_cwd(r->said);
    int code = 0;
    if (timed_out)
        snprintf(r->error, sizeof r->error, "timed out after %.0f s", cfg.timeout);
    else if (WIFSIGNALED(status))
        snprintf(r->error, sizeof r->error, "killed by signal %d (%s)%s%s", WTERMSIG(status),
                 strsignal(WTERMSIG(status)), tail[0] ? ": " : "", tail);
    else if ((code = WEXITSTATUS(status)) != 0 && !(check && code == 77))
        snprintf(r->error, sizeof r->error, "exit status %d%s%s", code, tail[0] ? ": " : "",
                 tail);
    else if (!check && !r->checksum[0])
        snprintf(r->error, sizeof r->error, "printed no checksum%s%s", tail[0] ? ": " : "", tail);
    else
        r->ok = 1;
    hide_cwd(r->error);
    if (check) /* the version line, or why the program is missing */
        last_line(out, r->error, sizeof r->error);
    rm_tree(dir);
    return check ? code : r->ok;
}

/* Which workloads run: the selected ones, and scripts only when their program is there. */
static void detect_workloads(void)
{
    for (int i = 0; i < cfg.nselected; i++) {
        int known = 0;
        for (size_t k = 0; k < NWORKLOADS; k++)
            known |= !strcmp(cfg.selected[i], workloads[k].name);
        if (!known)
            fail("unknown workload '%s' (see: runner list)", cfg.selected[i]);
    }
    for (size_t k = 0; k < NWORKLOADS; k++) {
        workload_t *w = &workloads[k];
        int chosen = cfg.nselected == 0;
        for (int i = 0; i < cfg.nselected; i++)
            chosen |= !strcmp(cfg.selected[i], w->name);
        w->chosen = chosen;
        if (!chosen)
            continue;
        if (!w->script) {
            w->available = 1;
            continue;
        }
        run_t r;
        int code = run_one(w, &cfg.alloc[0], 1, 1, 1, &r);
        w->available = code == 0;
        snprintf(w->note, sizeof w->note, "%s", r.error[0] ? r.error : "not available");
        if (!w->available)
            fprintf(stderr, "runner: skipping %s: %s\n", w->name, w->note);
    }
}

/* ------------------------------------------------------------ measure */

/* `runner measure FILE PRELOAD CMD...`: run CMD with LD_PRELOAD=PRELOAD (none
 * when empty), with the same stdio, and write its numbers to FILE. */
static int measure_main(int argc, char **argv)
{
    if (argc < 5)
        fail("usage: runner measure FILE PRELOAD CMD [ARG...]");
    double t0 = now();
    pid_t pid = fork();
    if (pid < 0)
        fail("fork: %s", strerror(errno));
    if (pid == 0) {
        if (argv[3][0])
            setenv("LD_PRELOAD", argv[3], 1);
        else
            unsetenv("LD_PRELOAD");
        execvp(argv[4], argv + 4);
        fprintf(stderr, "runner: cannot run %s: %s\n", argv[4], strerror(errno));
        _exit(127);
    }
    /* Signals for the group (a time-out, redis shutdown) reach the child too. */
    signal(SIGINT, SIG_IGN);
    signal(SIGTERM, SIG_IGN);
    int status;
    struct rusage ru;
    while (wait4(pid, &status, 0, &ru) < 0)
        if (errno != EINTR)
            fail("wait4: %s", strerror(errno));
    double wall = now() - t0;
    FILE *f = fopen(argv[2], "w");
    if (!f)
        fail("cannot write %s: %s", argv[2], strerror(errno));
    fprintf(f, "measured wall=%.6f cpu=%.6f maxrss_kb=%ld\n", wall,
            tv_sec(ru.ru_utime) + tv_sec(ru.ru_stime), ru.ru_maxrss);
    fclose(f);
    return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

/* ------------------------------------------------------ the machine */

typedef struct {
    char date[64], cpu[160], os[160], kernel[160], compiler[96], load0[64], load1[64];
    int cores;
    double mem_gib;
} machine_t;

static void describe_machine(machine_t *m)
{
    static char buf[1 << 16];
    memset(m, 0, sizeof *m);
    time_t t = time(NULL);
    strftime(m->date, sizeof m->date, "%Y-%m-%d %H:%M UTC", gmtime(&t));
    char *p = strstr(slurp("/proc/cpuinfo", buf, sizeof buf), "model name");
    snprintf(m->cpu, sizeof m->cpu, "unknown");
    if (p && (p = strchr(p, ':')))
        snprintf(m->cpu, sizeof m->cpu, "%.*s", (int)strcspn(p + 2, "\n"), p + 2);
    m->cores = (int)sysconf(_SC_NPROCESSORS_ONLN);
    struct sysinfo si;
    m->mem_gib = sysinfo(&si) ? 0 : (double)si.totalram * si.mem_unit / (1 << 30);
    snprintf(m->os, sizeof m->os, "unknown");
    p = strstr(slurp("/etc/os-release", buf, sizeof buf), "PRETTY_NAME=");
    if (p) {
        p += 12 + (p[12] == '"');
        snprintf(m->os, sizeof m->os, "%.*s", (int)strcspn(p, "\"\n"), p);
    }
    struct utsname u;
    uname(&u);
    snprintf(m->kernel, sizeof m->kernel, "%s %s %s", u.sysname, u.release, u.machine);
#ifdef __clang__
    snprintf(m->compiler, sizeof m->compiler, "clang %s", __clang_version__);
#else
    snprintf(m->compiler, sizeof m->compiler, "gcc %s", __VERSION__);
#endif
    slurp("/proc/loadavg", buf, sizeof buf);
    snprintf(m->load0, sizeof m->load0, "%.*s", 14, buf);
}

static void machine_table(FILE *f, const machine_t *m)
{
    fprintf(f, "| machine | |\n|---|---|\n");
    fprintf(f, "| CPU | %s, %d cores online |\n", m->cpu, m->cores);
    fprintf(f, "| memory | %.1f GiB |\n", m->mem_gib);
    fprintf(f, "| system | %s, %s |\n", m->os, m->kernel);
    fprintf(f, "| compiler | %s (workloads at -O2) |\n", m->compiler);
    if (m->load1[0])
        fprintf(f, "| load average | %s at start, %s at end |\n", m->load0, m->load1);
    fprintf(f, "\n| allocator | library | version |\n|---|---|---|\n");
    for (int i = 0; i < cfg.nalloc; i++) {
        const alloc_t *a = &cfg.alloc[i];
        const char *lib = a->path[0] ? a->path : "the C library's ptmalloc";
        if (!strcmp(a->name, "vmalloc"))
            lib = cfg.vmalloc;
        fprintf(f, "| %s | %s | %s |\n", a->name, lib, a->version[0] ? a->version : "?");
    }
}

/* ------------------------------------------------------------- report */

static cell_t cells[NWORKLOADS][MAX_ALLOCS];

static int shown(const workload_t *w)
{
    return w->available;
}

static void summarize(cell_t *c)
{
    double wall[MAX_REPS], cpu[MAX_REPS], rss[MAX_REPS], fin[MAX_REPS], live[MAX_REPS];
    int n = 0;
    for (int i = 0; i < c->nrun; i++) {
        run_t *r = &c->run[i];
        wall[n] = r->wall, cpu[n] = r->cpu, rss[n] = (double)r->maxrss_kb / 1024;
        fin[n] = (double)r->final_rss_kb / 1024, live[n] = (double)r->live_kb / 1024;
        n++;
    }
    double lo = NAN, hi = NAN;
    for (int i = 0; i < n; i++) {
        if (!(wall[i] >= lo))
            lo = wall[i];
        if (!(wall[i] <= hi))
            hi = wall[i];
    }
    c->wall = median(wall, n), c->cpu = median(cpu, n), c->rss_mib = median(rss, n);
    c->final_mib = median(fin, n), c->live_mib = median(live, n);
    c->spread = n > 1 ? (hi - lo) / c->wall : 0;
}

/* The ratio of allocator a to glibc for a metric, or NAN. */
static double ratio(int w, int a, int metric)
{
    cell_t *c = &cells[w][a], *g = &cells[w][0];
    if (c->failed || g->failed || !c->nrun || !g->nrun)
        return NAN;
    double x = metric == 0 ? c->wall : metric == 1 ? c->cpu : c->rss_mib;
    double y = metric == 0 ? g->wall : metric == 1 ? g->cpu : g->rss_mib;
    return y > 0 ? x / y : NAN;
}

/* Geometric mean of an allocator's ratios over the workloads where it and
 * glibc both succeeded; *count says over how many. */
static double geomean(int a, int metric, int *count)
{
    double s = 0;
    int n = 0;
    for (size_t w = 0; w < NWORKLOADS; w++) {
        double r = shown(&workloads[w]) ? ratio((int)w, a, metric) : NAN;
        if (r > 0) {
            s += log(r);
            n++;
        }
    }
    *count = n;
    return n ? exp(s / n) : NAN;
}

static int shown_count(void)
{
    int n = 0;
    for (size_t w = 0; w < NWORKLOADS; w++)
        n += shown(&workloads[w]);
    return n;
}

static void metric_table(FILE *f, int metric)
{
    static const char *title[] = { "Wall time (s)", "CPU time, user + system (s)", "Peak RSS (MiB)" };
    fprintf(f, "### %s\n\n| workload |", title[metric]);
    for (int a = 0; a < cfg.nalloc; a++)
        fprintf(f, " %s |", cfg.alloc[a].name);
    fprintf(f, "\n|---|");
    for (int a = 0; a < cfg.nalloc; a++)
        fprintf(f, "---:|");
    fprintf(f, "\n");
    for (size_t w = 0; w < NWORKLOADS; w++) {
        if (!shown(&workloads[w]))
            continue;
        fprintf(f, "| %s |", workloads[w].name);
        for (int a = 0; a < cfg.nalloc; a++) {
            cell_t *c = &cells[w][a];
            if (c->failed) {
                fprintf(f, " **FAIL** |");
                continue;
            }
            double v = metric == 0 ? c->wall : metric == 1 ? c->cpu : c->rss_mib;
            const char *noisy = metric == 0 && c->spread > 0.10 ? "~" : "";
            if (metric == 2)
                fprintf(f, " %.1f", v);
            else
                fprintf(f, " %s%.3f", noisy, v);
            double r = ratio((int)w, a, metric);
            if (a > 0 && r > 0)
                fprintf(f, " (%.2f)", r);
            fprintf(f, " |");
        }
        fprintf(f, "\n");
    }
    fprintf(f, "| **geometric mean of ratios** | 1.00 |");
    int total = shown_count();
    for (int a = 1; a < cfg.nalloc; a++) {
        int n;
        double g = geomean(a, metric, &n);
        if (n == 0)
            fprintf(f, " - |");
        else if (n < total)
            fprintf(f, " **%.2f** (%d of %d) |", g, n, total);
        else
            fprintf(f, " **%.2f** |", g);
    }
    fprintf(f, "\n\n");
}

static void write_markdown(FILE *f, const machine_t *m, double elapsed, int failures)
{
    fprintf(f, "# vmalloc benchmark: %s\n\n", m->date);
    fprintf(f, "%s mode: median of %d runs per cell, allocators interleaved; scale %g, "
               "%d threads for the threaded workloads; %.0f s in all.\n\n",
            cfg.quick ? "Quick" : "Full", cfg.reps, cfg.scale, cfg.threads, elapsed);
    machine_table(f, m);
    fprintf(f, "\nEach cell: the median, then in parentheses the ratio to glibc (below 1 is "
               "better). `~` marks a time whose runs spread over more than 10%% of the median. "
               "FAIL: the run crashed, timed out or printed a checksum different from glibc's "
               "(see Failures); it is left out of the geometric mean.\n\n");
    for (int metric = 0; metric < 3; metric++)
        metric_table(f, metric);

    for (size_t w = 0; w < NWORKLOADS; w++) {
        if (strcmp(workloads[w].name, "fragment") || !shown(&workloads[w]))
            continue;
        fprintf(f, "### Memory efficiency (fragment)\n\n| MiB |");
        for (int a = 0; a < cfg.nalloc; a++)
            fprintf(f, " %s |", cfg.alloc[a].name);
        fprintf(f, "\n|---|");
        for (int a = 0; a < cfg.nalloc; a++)
            fprintf(f, "---:|");
        static const char *row[] = { "peak RSS", "final RSS", "live data at the end" };
        for (int k = 0; k < 3; k++) {
            fprintf(f, "\n| %s |", row[k]);
            for (int a = 0; a < cfg.nalloc; a++) {
                cell_t *c = &cells[w][a];
                double v = k == 0 ? c->rss_mib : k == 1 ? c->final_mib : c->live_mib;
                if (c->failed || !(v >= 0))
                    fprintf(f, " - |");
                else
                    fprintf(f, " %.1f |", v);
            }
        }
        fprintf(f, "\n\n");
    }

    fprintf(f, "### Workloads\n\n| workload | threads | what it does |\n|---|---:|---|\n");
    for (size_t w = 0; w < NWORKLOADS; w++) {
        const workload_t *x = &workloads[w];
        if (!x->chosen)
            continue;
        if (!x->available)
            fprintf(f, "| %s | | skipped: %s |\n", x->name, x->note);
        else if (x->script)
            fprintf(f, "| %s | %d | %s; %s |\n", x->name, threads_for(x, cfg.threads), x->about,
                    x->note);
        else
            fprintf(f, "| %s | %d | %s |\n", x->name, threads_for(x, cfg.threads), x->about);
    }
    fprintf(f, "\n### Failures\n\n");
    if (!failures)
        fprintf(f, "None: every run finished and printed glibc's checksum.\n");
    for (size_t w = 0; w < NWORKLOADS; w++)
        for (int a = 0; a < cfg.nalloc; a++)
            if (shown(&workloads[w]) && cells[w][a].failed)
                fprintf(f, "- %s under %s: %s\n", workloads[w].name, cfg.alloc[a].name,
                        cells[w][a].why);
}

/* ----------------------------------------------------------------- SVG */

static const char *colors[] = { "#555555", "#d62728", "#1f77b4", "#2ca02c", "#9467bd",
                                "#ff7f0e", "#8c564b", "#17becf" };

static void svg_text(FILE *f, double x, double y, const char *anchor, const char *style,
                     const char *fmt, ...)
{
    char buf[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    fprintf(f, "<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"%s\"%s%s%s>", x, y, anchor,
            style[0] ? " " : "", style, "");
    for (const char *p = buf; *p; p++) {
        if (*p == '<')
            fputs("&lt;", f);
        else if (*p == '>')
            fputs("&gt;", f);
        else if (*p == '&')
            fputs("&amp;", f);
        else
            fputc(*p, f);
    }
    fputs("</text>\n", f);
}

/* Two panels of horizontal bars, wall time and peak RSS, each allocator's
 * ratio to glibc on a log2 axis centred on 1 (left of the line is better). */
static void write_svg(FILE *f, const machine_t *m)
{
    int nb = cfg.nalloc - 1, rows = shown_count() + 1;
    if (nb < 1)
        nb = 1;
    const double W = 980, label_w = 118, gap = 36, top = 104, bar_h = 9, bar_gap = 2;
    const double row_h = nb * (bar_h + bar_gap) + 10, panel_w = (W - label_w - gap - 24) / 2;
    const double H = top + rows * row_h + 64;

    /* A symmetric power-of-two range that holds every ratio, from 2x to 16x. */
    double span = 1;
    for (size_t w = 0; w < NWORKLOADS; w++)
        for (int a = 1; a < cfg.nalloc; a++)
            for (int k = 0; k < 3; k += 2) {
                double r = shown(&workloads[w]) ? ratio((int)w, a, k) : NAN;
                if (r > 0 && fabs(log2(r)) > span)
                    span = fabs(log2(r));
            }
    span = ceil(span);
    if (span > 4)
        span = 4;

    fprintf(f, "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
               "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"%.0f\" height=\"%.0f\" "
               "viewBox=\"0 0 %.0f %.0f\" font-family=\"DejaVu Sans, Helvetica, Arial, sans-serif\" "
               "font-size=\"11\">\n<rect width=\"100%%\" height=\"100%%\" fill=\"white\"/>\n",
            W, H, W, H);
    svg_text(f, 16, 26, "start", "font-size=\"17\" font-weight=\"bold\"",
             "vmalloc and peers compared with glibc: ratio to glibc, lower is better");
    svg_text(f, 16, 45, "start", "fill=\"#444\"",
             "%s; %s, %d cores; median of %d runs%s; log scale", m->date, m->cpu, m->cores,
             cfg.reps, cfg.quick ? " (quick mode)" : "");
    double lx = 16;
    for (int a = 1; a < cfg.nalloc; a++) {
        fprintf(f, "<rect x=\"%.1f\" y=\"58\" width=\"12\" height=\"12\" fill=\"%s\"/>\n", lx,
                colors[a % 8]);
        svg_text(f, lx + 17, 68.5, "start", "", "%s", cfg.alloc[a].name);
        lx += 30 + 8.0 * (double)strlen(cfg.alloc[a].name);
    }

    static const char *panel_title[] = { "wall time / glibc", "", "peak RSS / glibc" };
    for (int k = 0; k < 3; k += 2) {
        double x0 = label_w + (k ? panel_w + gap : 0);
#define XPOS(v) (x0 + (log2(v) / span + 1) / 2 * panel_w)
        svg_text(f, x0 + panel_w / 2, top - 10, "middle", "font-weight=\"bold\"", "%s",
                 panel_title[k]);
        for (int r = 0; r < rows; r++)
            if (r % 2 == 0 || r == rows - 1)
                fprintf(f, "<rect x=\"%.1f\" y=\"%.1f\" width=\"%.1f\" height=\"%.1f\" fill=\"%s\"/>\n",
                        x0, top + r * row_h, panel_w, row_h, r == rows - 1 ? "#fff3c4" : "#f3f3f3");
        for (int e = -(int)span; e <= (int)span; e++) {
            double x = XPOS(pow(2, e));
            fprintf(f, "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"%s\" "
                       "stroke-width=\"%s\"/>\n",
                    x, top, x, top + rows * row_h, e ? "#cccccc" : "#333333", e ? "1" : "1.5");
            if (e < 0)
                svg_text(f, x, top + rows * row_h + 14, "middle", "fill=\"#444\"", "1/%d",
                         1 << -e);
            else
                svg_text(f, x, top + rows * row_h + 14, "middle", "fill=\"#444\"", "%d×", 1 << e);
        }
        int r = 0;
        for (size_t w = 0; w <= NWORKLOADS; w++) {
            int is_mean = w == NWORKLOADS;
            if (!is_mean && !shown(&workloads[w]))
                continue;
            double y = top + r * row_h + 5;
            if (k == 0)
                svg_text(f, label_w - 8, top + r * row_h + row_h / 2 + 4, "end",
                         is_mean ? "font-weight=\"bold\"" : "", "%s",
                         is_mean ? "geometric mean" : workloads[w].name);
            for (int a = 1; a < cfg.nalloc; a++, y += bar_h + bar_gap) {
                int n;
                double v = is_mean ? geomean(a, k, &n) : ratio((int)w, a, k);
                if (!(v > 0)) {
                    if (!is_mean && cells[w][a].failed)
                        svg_text(f, XPOS(1) + 4, y + bar_h - 1, "start",
                                 "font-size=\"9\" fill=\"#c00000\" font-weight=\"bold\"",
                                 "%s failed", cfg.alloc[a].name);
                    continue;
                }
                double c = fmin(fmax(v, pow(2, -span)), pow(2, span));
                double xa = XPOS(1), xb = XPOS(c);
                fprintf(f, "<rect x=\"%.1f\" y=\"%.1f\" width=\"%.1f\" height=\"%.1f\" fill=\"%s\"/>\n",
                        fmin(xa, xb), y, fmax(fabs(xb - xa), 1), bar_h, colors[a % 8]);
                const char *clip = c != v ? (v > 1 ? ">" : "<") : "";
                if (v >= 1)
                    svg_text(f, fmin(xb + 3, x0 + panel_w - 2), y + bar_h - 1,
                             xb + 30 > x0 + panel_w ? "end" : "start", "font-size=\"9\"",
                             "%s%.2f", clip, v);
                else
                    svg_text(f, fmax(xb - 3, x0 + 2), y + bar_h - 1,
                             xb - 30 < x0 ? "start" : "end", "font-size=\"9\"", "%s%.2f", clip, v);
            }
            r++;
        }
#undef XPOS
    }
    svg_text(f, 16, H - 14, "start", "fill=\"#444\"",
             "Bars left of the 1× line: faster (or smaller) than glibc. The numbers are in "
             "bench/results/%s.md.",
             cfg.quick ? "quick" : "latest");
    fprintf(f, "</svg>\n");
}

/* ------------------------------------------------------------ the modes */

static void print_cell_progress(size_t w, int tty)
{
    fprintf(stderr, "%s%-9s", tty ? "\r\033[K" : "", workloads[w].name);
    for (int a = 0; a < cfg.nalloc; a++) {
        cell_t *c = &cells[w][a];
        if (c->failed)
            fprintf(stderr, "  %s FAIL", cfg.alloc[a].name);
        else if (a == 0)
            fprintf(stderr, "  %s %.3fs", cfg.alloc[a].name, c->wall);
        else
            fprintf(stderr, "  %s %.3fs %.2fx", cfg.alloc[a].name, c->wall, ratio((int)w, a, 0));
    }
    fprintf(stderr, "\n");
}

/* Record one run in its cell: a failure, or a checksum unlike glibc's, fails
 * the cell for good. Returns whether the cell is still good. */
static int record(size_t w, int a, const run_t *r)
{
    cell_t *c = &cells[w][a];
    cell_t *g = &cells[w][0];
    if (!r->ok) {
        c->failed = 1;
        snprintf(c->why, sizeof c->why, "%s", r->error);
        return 0;
    }
    char ref_buf[sizeof r->checksum];
    const char *ref = NULL;
    if (g->nrun)
        ref = strcpy(ref_buf, g->run[0].checksum);
    if (a == 0 && c->nrun && strcmp(r->checksum, ref)) {
        c->failed = 1;
        snprintf(c->why, sizeof c->why, "checksum %s differs from its first run's %s: the workload is "
                 "not deterministic", r->checksum, ref);
        return 0;
    }
    if (a > 0 && (!ref || g->failed)) {
        c->failed = 1;
        snprintf(c->why, sizeof c->why, "no glibc checksum to compare with");
        return 0;
    }
    if (a > 0 && strcmp(r->checksum, ref)) {
        c->failed = 1;
        snprintf(c->why, sizeof c->why, "checksum %s, glibc's is %s%s%s", r->checksum, ref,
                 r->said[0] ? "; it said: " : "", r->said);
        return 0;
    }
    if (c->nrun < MAX_REPS)
        c->run[c->nrun++] = *r;
    return 1;
}

static int failures_count(void)
{
    int n = 0;
    for (size_t w = 0; w < NWORKLOADS; w++)
        for (int a = 0; a < cfg.nalloc; a++)
            n += shown(&workloads[w]) && cells[w][a].failed;
    return n;
}

static FILE *open_out(const char *name, char *path, size_t cap)
{
    snprintf(path, cap, "%s/%s", cfg.out, name);
    FILE *f = fopen(path, "w");
    if (!f)
        fprintf(stderr, "runner: cannot write %s: %s\n", path, strerror(errno));
    return f;
}

static void copy_file(const char *from, const char *to)
{
    static char buf[1 << 20];
    slurp(from, buf, sizeof buf);
    FILE *f = fopen(to, "w");
    if (f) {
        fputs(buf, f);
        fclose(f);
    }
}

static int bench_main(void)
{
    machine_t m;
    describe_machine(&m);
    detect_allocs(1);
    for (int a = 1; a < cfg.nalloc; a++) {
        char why[PATH_MAX + 200];
        if (!preload_works(&cfg.alloc[a], why, sizeof why))
            fail("%s", why);
    }
    detect_workloads();

    fprintf(stderr, "runner: %s mode, %d runs each, scale %g, %d threads; allocators:",
            cfg.quick ? "quick" : "full", cfg.reps, cfg.scale, cfg.threads);
    for (int a = 0; a < cfg.nalloc; a++)
        fprintf(stderr, " %s", cfg.alloc[a].name);
    fprintf(stderr, "\n");

    int tty = isatty(2);
    double start = now();
    for (size_t w = 0; w < NWORKLOADS; w++) {
        if (!shown(&workloads[w]))
            continue;
        if (workloads[w].script) {
            /* One run untimed, so that no allocator pays for a cold file cache. */
            run_t r;
            if (tty)
                fprintf(stderr, "\r%-9s warming up", workloads[w].name);
            run_one(&workloads[w], &cfg.alloc[0], cfg.scale, cfg.threads, 0, &r);
        }
        for (int rep = 0; rep < cfg.reps; rep++) {
            for (int a = 0; a < cfg.nalloc; a++) {
                if (cells[w][a].failed)
                    continue;
                if (tty)
                    fprintf(stderr, "\r%-9s run %d of %d, %-10s", workloads[w].name, rep + 1,
                            cfg.reps, cfg.alloc[a].name);
                run_t r;
                run_one(&workloads[w], &cfg.alloc[a], cfg.scale, cfg.threads, 0, &r);
                record(w, a, &r);
            }
        }
        for (int a = 0; a < cfg.nalloc; a++)
            summarize(&cells[w][a]);
        print_cell_progress(w, tty);
    }
    double elapsed = now() - start;
    char buf[256];
    slurp("/proc/loadavg", buf, sizeof buf);
    snprintf(m.load1, sizeof m.load1, "%.*s", 14, buf);
    int failures = failures_count();

    fprintf(stdout, "\n");
    write_markdown(stdout, &m, elapsed, failures);

    if (cfg.out[0]) {
        mkdir(cfg.out, 0755);
        char md[PATH_MAX], svg[PATH_MAX];
        const char *base = cfg.quick ? "quick" : "latest";
        char name[64];
        snprintf(name, sizeof name, "%s.md", base);
        FILE *f = open_out(name, md, sizeof md);
        if (f) {
            write_markdown(f, &m, elapsed, failures);
            fprintf(f, "\n![ratios to glibc](%s.svg)\n", base);
            fclose(f);
        }
        snprintf(name, sizeof name, "%s.svg", base);
        f = open_out(name, svg, sizeof svg);
        if (f) {
            write_svg(f, &m);
            fclose(f);
        }
        if (!cfg.quick) {
            /* A dated copy of a full run, kept next to the latest. */
            char stamp[32], to[PATH_MAX + 64];
            time_t t = time(NULL);
            strftime(stamp, sizeof stamp, "%Y%m%d-%H%M", gmtime(&t));
            snprintf(to, sizeof to, "%s/%s.md", cfg.out, stamp);
            copy_file(md, to);
            snprintf(to, sizeof to, "%s/%s.svg", cfg.out, stamp);
            copy_file(svg, to);
            fprintf(stderr, "runner: wrote %s, %s and a copy dated %s\n", md, svg, stamp);
        } else {
            fprintf(stderr, "runner: wrote %s and %s\n", md, svg);
        }
    }
    /* A peer's failure is its own finding, reported in the table; the exit
     * status says whether vmalloc (or the glibc reference) failed. */
    int ours = 0;
    for (size_t w = 0; w < NWORKLOADS; w++)
        for (int a = 0; a < cfg.nalloc; a++)
            if (shown(&workloads[w]) && cells[w][a].failed &&
                (a == 0 || !strcmp(cfg.alloc[a].name, "vmalloc")))
                ours++;
    if (failures)
        fprintf(stderr, "runner: %d failed cells, %d of them vmalloc's or glibc's (see Failures)\n",
                failures, ours);
    return ours ? 1 : 0;
}

/* Every workload at a tiny scale under vmalloc (and the peers with --peers),
 * compared with glibc's checksum. Ends with the line the test suite reads. */
static int smoke_main(void)
{
    if (!cfg.alloc_given && access(cfg.vmalloc, R_OK)) {
        printf("bench-smoke: %s is not built\nbench-smoke: 0 passed, 1 failed\n", cfg.vmalloc);
        return 1;
    }
    detect_allocs(cfg.peers_in_smoke);
    int passed = 0, failed = 0, skipped = 0;
    for (int a = 1; a < cfg.nalloc; a++) {
        char why[PATH_MAX + 200];
        if (!preload_works(&cfg.alloc[a], why, sizeof why)) {
            printf("FAIL %s: %s\n", cfg.alloc[a].name, why);
            failed++;
        }
    }
    if (failed) {
        printf("bench-smoke: %d passed, %d failed\n", passed, failed);
        return 1;
    }
    detect_workloads();
    for (size_t w = 0; w < NWORKLOADS; w++) {
        workload_t *x = &workloads[w];
        if (!x->available) {
            if (x->chosen) {
                printf("skip %-9s %s\n", x->name, x->note);
                skipped++;
            }
            continue;
        }
        for (int a = 0; a < cfg.nalloc; a++) {
            run_t r;
            run_one(x, &cfg.alloc[a], cfg.scale, cfg.threads, 0, &r);
            if (!record(w, a, &r) && a == 0) {
                printf("FAIL %-9s glibc: %s\n", x->name, cells[w][0].why);
                failed++;
                break;
            }
            if (a == 0)
                continue;
            if (cells[w][a].failed) {
                printf("FAIL %-9s %s: %s\n", x->name, cfg.alloc[a].name, cells[w][a].why);
                failed++;
            } else {
                printf("ok   %-9s %-9s checksum=%s %.2fs\n", x->name, cfg.alloc[a].name,
                       r.checksum, r.wall);
                passed++;
            }
        }
        fflush(stdout);
    }
    printf("bench-smoke: %d passed, %d failed", passed, failed);
    if (skipped)
        printf(", %d skipped", skipped);
    printf("\n");
    return failed ? 1 : 0;
}

/* ------------------------------------------------------------- instr */

typedef struct {
    int alloc, variant, big;
    pid_t pid;
    char err[PATH_MAX];
    double count;
} instr_job_t;

static const struct {
    const char *mode;
    int size;
    const char *label;
} variants[] = {
    { "pair", 16, "malloc + free, 16 B" },       { "pair", 64, "malloc + free, 64 B" },
    { "pair", 256, "malloc + free, 256 B" },     { "pair", 1024, "malloc + free, 1 KiB" },
    { "xfree", 16, "cross-thread free, 16 B" },  { "xfree", 64, "cross-thread free, 64 B" },
    { "xfree", 256, "cross-thread free, 256 B" }, { "xfree", 1024, "cross-thread free, 1 KiB" },
};
enum { NVARIANTS = sizeof variants / sizeof variants[0], N_SMALL = 20000, N_BIG = 220000 };

static void instr_start(instr_job_t *j)
{
    snprintf(j->err, sizeof j->err, "%s/instr-%d-%d-%d", cfg.tmp, j->alloc, j->variant, j->big);
    char prog[PATH_MAX], size[16], n[16];
    snprintf(prog, sizeof prog, "%s/instr", cfg.bin);
    snprintf(size, sizeof size, "%d", variants[j->variant].size);
    snprintf(n, sizeof n, "%d", j->big ? N_BIG : N_SMALL);
    j->pid = fork();
    if (j->pid < 0)
        fail("fork: %s", strerror(errno));
    if (j->pid == 0) {
        int e = open(j->err, O_WRONLY | O_CREAT | O_TRUNC, 0600);
        int o = open("/dev/null", O_WRONLY);
        if (e < 0 || o < 0)
            _exit(126);
        dup2(o, 1), dup2(e, 2);
        const alloc_t *a = &cfg.alloc[j->alloc];
        if (a->path[0])
            setenv("LD_PRELOAD", a->path, 1);
        else
            unsetenv("LD_PRELOAD");
        execlp("valgrind", "valgrind", "--tool=callgrind", "--callgrind-out-file=/dev/null",
               prog, variants[j->variant].mode, size, n, (char *)NULL);
        _exit(127);
    }
}

static void instr_finish(instr_job_t *j)
{
    static char buf[1 << 16];
    char *p = strstr(slurp(j->err, buf, sizeof buf), "Collected :");
    j->count = p ? atof(p + 11) : NAN;
    if (!p) {
        char tail[200];
        last_line(buf, tail, sizeof tail);
        fprintf(stderr, "runner: callgrind failed for %s %s %d: %s\n", cfg.alloc[j->alloc].name,
                variants[j->variant].mode, variants[j->variant].size, tail);
    }
}

static int instr_main(void)
{
    char vg[256];
    first_line("valgrind --version 2>/dev/null", vg, sizeof vg);
    if (!vg[0]) {
        fprintf(stderr, "runner: valgrind is not installed (Debian: apt-get install valgrind)\n");
        return 1;
    }
    machine_t m;
    describe_machine(&m);
    detect_allocs(1);

    int njobs = cfg.nalloc * NVARIANTS * 2, next = 0, running = 0, done = 0, failed = 0;
    instr_job_t *jobs = calloc((size_t)njobs, sizeof *jobs);
    if (!jobs)
        fail("out of memory");
    for (int i = 0; i < njobs; i++)
        jobs[i] = (instr_job_t){ .alloc = i / (NVARIANTS * 2), .variant = i / 2 % NVARIANTS,
                                 .big = i % 2 };
    int width = m.cores > 0 ? m.cores : 1;
    fprintf(stderr, "runner: %d callgrind runs, %d at a time\n", njobs, width);
    while (done < njobs) {
        while (running < width && next < njobs) {
            instr_start(&jobs[next++]);
            running++;
        }
        int status;
        pid_t pid = wait(&status);
        if (pid < 0)
            fail("wait: %s", strerror(errno));
        for (int i = 0; i < next; i++)
            if (jobs[i].pid == pid) {
                instr_finish(&jobs[i]);
                jobs[i].pid = 0;
                running--, done++;
                fprintf(stderr, "\r%d of %d", done, njobs);
            }
    }
    fprintf(stderr, "\n");

    static char text[1 << 16];
    FILE *f = fmemopen(text, sizeof text, "w");
    fprintf(f, "# vmalloc instruction counts: %s\n\n", m.date);
    fprintf(f, "Instructions per operation, counted by %s with `--tool=callgrind`: "
               "(count for N = %d - count for N = %d) / %d, so start-up and exit cancel. "
               "A malloc + free pair frees at once in the same thread; a cross-thread free is a "
               "malloc in one thread and its free in another, in batches of 1000 handed over "
               "through a pipe (the hand-over adds about one instruction per block). "
               "The loop itself adds a few instructions to every cell. Lower is better.\n\n",
            vg, N_BIG, N_SMALL, N_BIG - N_SMALL);
    machine_table(f, &m);
    fprintf(f, "\n| operation |");
    for (int a = 0; a < cfg.nalloc; a++)
        fprintf(f, " %s |", cfg.alloc[a].name);
    fprintf(f, "\n|---|");
    for (int a = 0; a < cfg.nalloc; a++)
        fprintf(f, "---:|");
    fprintf(f, "\n");
    for (int v = 0; v < NVARIANTS; v++) {
        fprintf(f, "| %s |", variants[v].label);
        for (int a = 0; a < cfg.nalloc; a++) {
            instr_job_t *small = &jobs[(a * NVARIANTS + v) * 2], *big = small + 1;
            double per = (big->count - small->count) / (N_BIG - N_SMALL);
            if (per == per)
                fprintf(f, " %.1f |", per);
            else {
                fprintf(f, " failed |");
                failed++;
            }
        }
        fprintf(f, "\n");
    }
    fclose(f);
    fputs(text, stdout);
    free(jobs);
    if (cfg.out[0]) {
        char path[PATH_MAX];
        mkdir(cfg.out, 0755);
        FILE *o = open_out("instr.md", path, sizeof path);
        if (o) {
            fputs(text, o);
            fclose(o);
            fprintf(stderr, "runner: wrote %s\n", path);
        }
    }
    return failed ? 1 : 0;
}

/* ---------------------------------------------------------------- main */

static void usage(int code)
{
    fprintf(code ? stderr : stdout,
            "usage: runner [run|smoke|instr|list] [options] [WORKLOAD...]\n"
            "       runner measure FILE PRELOAD CMD [ARG...]\n"
            "options:\n"
            "  --quick            small scale and 3 runs (about a minute on 2 cores)\n"
            "  --reps N           runs per workload and allocator (default 5, quick 3)\n"
            "  --scale X          work per run (default 1; quick 0.15; smoke 0.02)\n"
            "  --threads N        threads for the threaded workloads (default: cores, at least 2)\n"
            "  --timeout S        seconds before a run is killed and failed (default 300)\n"
            "  --only A,B         only these allocators (glibc always runs)\n"
            "  --alloc NAME=LIB   use exactly the allocators given (glibc= for glibc)\n"
            "  --vmalloc LIB      vmalloc's library (default ./libvmalloc.so)\n"
            "  --vmalloc-version V  shown in the report\n"
            "  --peers            smoke: check the peers too\n"
            "  --bin DIR          built programs (default build/bench)\n"
            "  --src DIR          the bench folder (default bench)\n"
            "  --out DIR          results (default bench/results; '' writes none)\n");
    exit(code);
}

int main(int argc, char **argv)
{
    if (argc > 1 && !strcmp(argv[1], "measure"))
        return measure_main(argc, argv);
    int i = 1;
    cfg.mode = "run";
    if (argc > 1 && argv[1][0] != '-') {
        const char *m = argv[1];
        if (!strcmp(m, "run") || !strcmp(m, "smoke") || !strcmp(m, "instr") || !strcmp(m, "list")) {
            cfg.mode = m;
            i = 2;
        }
    }
    for (; i < argc; i++) {
        const char *a = argv[i];
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
#define ARG(name) (!strcmp(a, name) && (v || (usage(2), 0)) && ++i)
        if (!strcmp(a, "--help") || !strcmp(a, "-h"))
            usage(0);
        else if (!strcmp(a, "--quick"))
            cfg.quick = 1;
        else if (!strcmp(a, "--peers"))
            cfg.peers_in_smoke = 1;
        else if (ARG("--reps"))
            cfg.reps = atoi(v);
        else if (ARG("--scale"))
            cfg.scale = atof(v);
        else if (ARG("--threads"))
            cfg.threads = atoi(v);
        else if (ARG("--timeout"))
            cfg.timeout = atof(v);
        else if (ARG("--only"))
            cfg.only_allocs = v;
        else if (ARG("--vmalloc"))
            cfg.vmalloc = v;
        else if (ARG("--vmalloc-version"))
            cfg.vmalloc_version = v;
        else if (ARG("--bin"))
            cfg.bin = v;
        else if (ARG("--src"))
            cfg.src = v;
        else if (ARG("--out"))
            cfg.out = v;
        else if (ARG("--alloc")) {
            const char *eq = strchr(v, '=');
            if (!eq || eq == v || eq - v >= 32)
                usage(2);
            char name[32];
            snprintf(name, sizeof name, "%.*s", (int)(eq - v), v);
            int before = cfg.nalloc;
            add_alloc(name, eq + 1);
            if (cfg.nalloc == before)
                fail("no library at %s", eq + 1);
            cfg.alloc_given = 1;
        } else if (a[0] == '-')
            usage(2);
        else if (cfg.nselected < MAX_WORKLOADS)
            cfg.selected[cfg.nselected++] = a;
#undef ARG
    }
    int smoke = !strcmp(cfg.mode, "smoke");
    if (!cfg.reps)
        cfg.reps = smoke ? 1 : cfg.quick ? 3 : 5;
    if (cfg.reps < 1 || cfg.reps > MAX_REPS)
        fail("--reps must be 1-%d", MAX_REPS);
    if (!(cfg.scale > 0))
        cfg.scale = smoke ? 0.02 : cfg.quick ? 0.15 : 1;
    if (cfg.threads < 1) {
        long n = sysconf(_SC_NPROCESSORS_ONLN);
        cfg.threads = n < 2 ? 2 : n > 64 ? 64 : (int)n;
    }
    if (!(cfg.timeout > 0))
        cfg.timeout = smoke ? 60 : 300;
    if (!realpath("/proc/self/exe", cfg.self))
        fail("cannot find myself: %s", strerror(errno));

    /* SIGCHLD stays blocked so that wait_child can sleep on it. */
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGCHLD);
    sigprocmask(SIG_BLOCK, &set, NULL);

    const char *tmpdir = getenv("TMPDIR");
    snprintf(cfg.tmp, sizeof cfg.tmp, "%s/vmbench.XXXXXX", tmpdir && *tmpdir ? tmpdir : "/tmp");
    if (!mkdtemp(cfg.tmp))
        fail("mkdtemp %s: %s", cfg.tmp, strerror(errno));

    int rc;
    if (!strcmp(cfg.mode, "list")) {
        detect_allocs(1);
        detect_workloads();
        for (size_t w = 0; w < NWORKLOADS; w++)
            printf("%-9s %-4s %s%s%s\n", workloads[w].name, workloads[w].available ? "" : "skip",
                   workloads[w].about, workloads[w].note[0] ? "; " : "", workloads[w].note);
        printf("allocators:");
        for (int a = 0; a < cfg.nalloc; a++)
            printf(" %s%s%s", cfg.alloc[a].name, cfg.alloc[a].path[0] ? "=" : "",
                   cfg.alloc[a].path);
        printf("\n");
        rc = 0;
    } else if (smoke) {
        rc = smoke_main();
    } else if (!strcmp(cfg.mode, "instr")) {
        rc = instr_main();
    } else {
        rc = bench_main();
    }
    rm_tree(cfg.tmp);
    return rc;
}
