/*
 * The benchmark runner: every workload under every allocator, measured from
 * outside the process, reported as a markdown table and an SVG chart.
 *
 *     runner [run] [options] [WORKLOAD...]   the comparison (make bench)
 *     runner memory [options] [WORKLOAD...]  memory going back to the system (make bench-memory)
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
 * checksum differs from glibc's is a failure and never a result. Workloads
 * whose threads each do the same work whatever their number also run on one
 * thread, in the same rotation, for the thread scaling table.
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
#include <stddef.h>
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

/* Shared with the vmalloc command (src/cli): the peers, the SVG writing, the measuring. */
#include "measure.h"
#include "peers.h"
#include "svg.h"

/* Paths and messages are cut to their buffers on purpose. */
#pragma GCC diagnostic ignored "-Wformat-truncation"

enum { MAX_ALLOCS = 12, MAX_REPS = 64, MAX_WORKLOADS = 32, MAX_PHASES = 8 };

/* ------------------------------------------------------------ the tables */

/* How many threads a workload runs: the THREADS given, one, or at least two.
 * T_GIVEN_SAME_WORK is the THREADS given too, but each thread does the same
 * independent work whatever their number, so the workload also runs on one
 * thread and the report shows how its throughput scales (thread_scaling). */
enum { T_GIVEN, T_ONE, T_TWO, T_GIVEN_SAME_WORK };

/* What a workload is measured for: time (the three tables), or the memory it
 * holds phase by phase (the memory section; run by make bench-memory and by a
 * full make bench, not by a quick one). */
enum { TIMED, MEMORY };

typedef struct {
    const char *name;
    const char *script; /* bench/progs/<script>, or NULL for the workloads program */
    int threads;
    int kind;
    const char *about;
    /* Filled in at start-up. */
    int chosen, available;
    char note[160]; /* the program's version, or why it is skipped */
} workload_t;

static workload_t workloads[] = {
    { "churn", NULL, T_ONE, TIMED, "small-object churn in one thread (8-512 B), interpreter-like", 0, 0, "" },
    { "mix", NULL, T_GIVEN_SAME_WORK, TIMED, "long-lived tree and table, short-lived trees and lists", 0, 0, "" },
    { "server", NULL, T_GIVEN, TIMED, "working sets, random replacement, batches freed by another thread", 0, 0, "" },
    { "prodcons", NULL, T_TWO, TIMED, "producer/consumer ring: every block freed by another thread", 0, 0, "" },
    { "cache", NULL, T_TWO, TIMED, "false sharing: small objects handed over and written hard", 0, 0, "" },
    { "realloc", NULL, T_GIVEN_SAME_WORK, TIMED, "strings and vectors grown by realloc from bytes to MiB", 0, 0, "" },
    { "large", NULL, T_GIVEN_SAME_WORK, TIMED, "64 KiB-64 MiB blocks touched sparsely, freed out of order", 0, 0, "" },
    { "aligned", NULL, T_GIVEN_SAME_WORK, TIMED, "posix_memalign and aligned_alloc, 16 B-4 KiB alignments", 0, 0, "" },
    { "threads", NULL, T_GIVEN, TIMED, "short-lived threads allocating and exiting", 0, 0, "" },
    { "pool", NULL, T_GIVEN, TIMED, "thread-pool batches: 4 workers per thread run interpreter tasks and exit", 0, 0, "" },
    { "fragment", NULL, T_ONE, TIMED, "fragmenting pattern: peak and final RSS", 0, 0, "" },
    { "thrash", NULL, T_ONE, TIMED, "64 blocks of 1 MiB allocated, written in full and freed, in a loop", 0, 0, "" },
    { "python", "python.sh", T_ONE, TIMED, "python3 script: records, strings, trees, JSON (PYTHONMALLOC=malloc)", 0, 0, "" },
    { "sqlite", "sqlite.sh", T_ONE, TIMED, "sqlite3: bulk insert, two indexes, update, delete, group by", 0, 0, "" },
    { "redis", "redis.sh", T_ONE, TIMED, "redis-server on 127.0.0.1: Lua load plus redis-benchmark", 0, 0, "" },
    { "gcc", "gcc.sh", T_ONE, TIMED, "gcc -O2 compiling a large generated C file", 0, 0, "" },
    { "return-small", NULL, T_ONE, MEMORY, "1 GiB of 16 B-8 KiB blocks: RSS after allocating, freeing, idling, trim", 0, 0, "" },
    { "return-large", NULL, T_ONE, MEMORY, "1 GiB of 64 KiB-1 MiB blocks: RSS after allocating, freeing, idling, trim", 0, 0, "" },
    { "trim-latency", NULL, T_ONE, MEMORY, "malloc_trim timed on a 5 GiB heap with half its blocks freed at random", 0, 0, "" },
};
enum { NWORKLOADS = sizeof workloads / sizeof workloads[0] };

typedef struct {
    char name[32];
    char path[PATH_MAX]; /* absolute; empty for glibc */
    char version[96];
    char env[256]; /* a variant's NAME=VALUE assignments, separated by spaces */
    int ours;      /* vmalloc or one of its variants: its failures fail the run */
} alloc_t;

/* The end of one phase of a memory workload, as it reported it; in a cell,
 * the medians of its runs. */
typedef struct {
    char name[16];
    double rss_kb, lazy_kb, live_kb, ms;
} phase_t;

/* One measured run. */
typedef struct {
    int ok;
    double wall, cpu;
    long maxrss_kb, final_rss_kb, live_kb, minflt, loops;
    phase_t phase[MAX_PHASES];
    int nphase;
    char malloc_by[48], trim_by[48], release_call[96]; /* whose malloc_trim ran */
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
    double wall, cpu, rss_mib, spread, final_mib, live_mib, minflt, loops;
    phase_t phase[MAX_PHASES];
    int nphase;
} cell_t;

/* ------------------------------------------------------------- settings */

static struct {
    const char *mode;
    int quick, reps, mem_reps, threads, peers_in_smoke;
    double scale, timeout;
    const char *bin, *src, *out, *vmalloc, *vmalloc_version, *only_allocs;
    alloc_t alloc[MAX_ALLOCS];
    int nalloc, alloc_given;
    char tmp[PATH_MAX];
    char self[PATH_MAX];
    const char *selected[MAX_WORKLOADS];
    int nselected;
    const char *variant[MAX_ALLOCS]; /* --variant NAME=ASSIGNMENTS, as given */
    int nvariant;
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

/* Check a --variant NAME=ASSIGNMENTS and keep it for detect_allocs. */
static void parse_variant(const char *spec)
{
    const char *eq = strchr(spec, '=');
    if (!eq || eq == spec || eq - spec >= 32 || !eq[1])
        fail("--variant NAME=VAR=VALUE[ VAR=VALUE...], not '%s'", spec);
    char name[32];
    snprintf(name, sizeof name, "%.*s", (int)(eq - spec), spec);
    if (!strcmp(name, "glibc") || !strcmp(name, "vmalloc") || vm_peer_is_name(name))
        fail("--variant: '%s' is an allocator's name; give the variant its own", name);
    for (int i = 0; i < cfg.nvariant; i++)
        if (!strncmp(cfg.variant[i], spec, (size_t)(eq - spec + 1)))
            fail("--variant: '%s' is given twice", name);
    char words[256];
    snprintf(words, sizeof words, "%s", eq + 1);
    for (char *save = NULL, *w = strtok_r(words, " \t", &save); w; w = strtok_r(NULL, " \t", &save))
        if (!strchr(w, '=') || w[0] == '=')
            fail("--variant %s: '%s' is not VAR=VALUE", name, w);
    if (cfg.nvariant == MAX_ALLOCS)
        fail("too many variants");
    cfg.variant[cfg.nvariant++] = spec;
}

/* Each variant: vmalloc's library under its own name, with its environment
 * assignments; placed after vmalloc, so the two columns sit side by side. */
static void add_variants(const alloc_t *base)
{
    if (cfg.nvariant && !base->path[0])
        fail("--variant needs vmalloc, and %s is not built", cfg.vmalloc);
    int at = 1;
    for (int i = 0; i < cfg.nalloc; i++)
        if (!strcmp(cfg.alloc[i].name, "vmalloc"))
            at = i + 1;
    for (int v = 0; v < cfg.nvariant; v++, at++) {
        if (cfg.nalloc == MAX_ALLOCS)
            fail("too many allocators");
        memmove(&cfg.alloc[at + 1], &cfg.alloc[at], (size_t)(cfg.nalloc - at) * sizeof cfg.alloc[0]);
        cfg.nalloc++;
        alloc_t *a = &cfg.alloc[at];
        const char *spec = cfg.variant[v], *eq = strchr(spec, '=');
        *a = *base;
        snprintf(a->name, sizeof a->name, "%.*s", (int)(eq - spec), spec);
        /* The assignments, one space apart. */
        char words[256];
        size_t len = 0;
        snprintf(words, sizeof words, "%s", eq + 1);
        a->env[0] = 0;
        for (char *save = NULL, *w = strtok_r(words, " \t", &save); w;
             w = strtok_r(NULL, " \t", &save))
            len += (size_t)snprintf(a->env + len, sizeof a->env - len, "%s%s", len ? " " : "", w);
    }
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
        for (int i = 0; with_peers && i < VM_PEER_COUNT; i++) {
            char path[PATH_MAX];
            if (vm_peer_locate(&vm_peers[i], path, sizeof path))
                add_alloc(vm_peers[i].name, path);
        }
    }
    /* Keep the wanted ones, glibc first. */
    alloc_t base = { .name = "" };
    int n = 0;
    for (int i = 0; i < cfg.nalloc; i++) {
        if (!strcmp(cfg.alloc[i].name, "vmalloc"))
            base = cfg.alloc[i];
        if (wanted(cfg.alloc[i].name))
            cfg.alloc[n++] = cfg.alloc[i];
    }
    cfg.nalloc = n;
    if (!n || strcmp(cfg.alloc[0].name, "glibc"))
        fail("glibc must be the first allocator: it is the reference");
    add_variants(&base);

    for (int i = 0; i < cfg.nalloc; i++) {
        alloc_t *a = &cfg.alloc[i];
        a->ours = !strcmp(a->name, "vmalloc") || a->env[0];
        if (!strcmp(a->name, "glibc"))
            snprintf(a->version, sizeof a->version, "%s", gnu_get_libc_version());
        else if (a->ours)
            snprintf(a->version, sizeof a->version, "%s", cfg.vmalloc_version);
        else
            package_version(a->path, a->version, sizeof a->version);
    }
}

/* Set a variant's assignments in a child about to exec. */
static void apply_env(const alloc_t *a)
{
    char buf[sizeof a->env];
    snprintf(buf, sizeof buf, "%s", a->env);
    for (char *save = NULL, *w = strtok_r(buf, " ", &save); w; w = strtok_r(NULL, " ", &save)) {
        char *eq = strchr(w, '=');
        *eq = 0;
        setenv(w, eq + 1, 1);
    }
}

/* Whether preloading a library really replaces malloc: ld.so only warns when a
 * preload fails, and the run would then measure glibc under another name. */
static int preload_works(const alloc_t *a, char *why, size_t cap)
{
    char prog[PATH_MAX], got[PATH_MAX] = "";
    snprintf(prog, sizeof prog, "%s/workloads", cfg.bin);
    int fd[2];
    if (pipe(fd))
        fail("pipe: %s", strerror(errno));
    pid_t pid = fork();
    if (pid < 0)
        fail("fork: %s", strerror(errno));
    if (pid == 0) {
        dup2(fd[1], 1), dup2(fd[1], 2);
        close(fd[0]), close(fd[1]);
        setenv("LD_PRELOAD", a->path, 1);
        apply_env(a);
        execl(prog, prog, "which-malloc", (char *)NULL);
        _exit(127);
    }
    close(fd[1]);
    size_t n = 0;
    ssize_t k;
    while (n + 1 < sizeof got && (k = read(fd[0], got + n, sizeof got - 1 - n)) > 0)
        n += (size_t)k;
    got[n] = 0;
    got[strcspn(got, "\n")] = 0;
    close(fd[0]);
    while (waitpid(pid, NULL, 0) < 0 && errno == EINTR)
        ;
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
    double deadline = vm_measure_now() + timeout;
    for (;;) {
        pid_t r = wait4(pid, status, WNOHANG, ru);
        if (r == pid)
            return 0;
        if (r < 0 && errno != EINTR)
            fail("wait4: %s", strerror(errno));
        double left = deadline - vm_measure_now();
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

/* A memory workload's "phase NAME rss_kb=N lazy_kb=N live_kb=N ms=X". */
static void parse_phase(const char *line, run_t *r)
{
    if (r->nphase == MAX_PHASES)
        return;
    phase_t *ph = &r->phase[r->nphase++];
    const char *p;
    snprintf(ph->name, sizeof ph->name, "%.*s", (int)strcspn(line, " "), line);
    ph->rss_kb = (p = strstr(line, " rss_kb=")) ? atof(p + 8) : NAN;
    ph->lazy_kb = (p = strstr(line, " lazy_kb=")) ? atof(p + 9) : NAN;
    ph->live_kb = (p = strstr(line, " live_kb=")) ? atof(p + 9) : NAN;
    ph->ms = (p = strstr(line, " ms=")) ? atof(p + 4) : NAN;
}

/* Parse what a workload printed: checksum=, final_rss_kb=, live_kb=, idle_s=
 * (time spent asleep on purpose, taken off the wall time), loops=, a memory
 * workload's phases and whose malloc_trim it called, and a script's
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
        else if (!strncmp(buf, "loops=", 6))
            r->loops = atol(buf + 6);
        else if (!strncmp(buf, "phase ", 6))
            parse_phase(buf + 6, r);
        else if (!strncmp(buf, "malloc_by=", 10))
            snprintf(r->malloc_by, sizeof r->malloc_by, "%s", buf + 10);
        else if (!strncmp(buf, "malloc_trim_by=", 15))
            snprintf(r->trim_by, sizeof r->trim_by, "%s", buf + 15);
        else if (!strncmp(buf, "release_call=", 13))
            snprintf(r->release_call, sizeof r->release_call, "%s", buf + 13);
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

    double t0 = vm_measure_now();
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
        apply_env(a);
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
    double t1 = vm_measure_now();
    if (w->script)
        kill(-pid, SIGKILL); /* anything the script left behind */

    static char out[1 << 16], err[1 << 14];
    slurp(outp, out, sizeof out);
    slurp(errp, err, sizeof err);
    r->wall = t1 - t0;
    r->cpu = vm_measure_cpu_seconds(&ru);
    r->maxrss_kb = ru.ru_maxrss;
    r->minflt = ru.ru_minflt;
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

/* Whether a workload runs when none is named: make bench-memory runs the
 * memory workloads and thrash; make bench the timed ones, and the memory ones
 * too unless it is quick (they take about a minute per repetition); the smoke
 * test all of them. */
static int runs_by_default(const workload_t *w)
{
    if (!strcmp(cfg.mode, "memory"))
        return w->kind == MEMORY || !strcmp(w->name, "thrash");
    if (!strcmp(cfg.mode, "run"))
        return w->kind == TIMED || !cfg.quick;
    return 1;
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
        int chosen = cfg.nselected == 0 && runs_by_default(w);
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
    double t0 = vm_measure_now();
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
    double wall = vm_measure_now() - t0;
    FILE *f = fopen(argv[2], "w");
    if (!f)
        fail("cannot write %s: %s", argv[2], strerror(errno));
    fprintf(f, "measured wall=%.6f cpu=%.6f maxrss_kb=%ld\n", wall,
            vm_measure_cpu_seconds(&ru), ru.ru_maxrss);
    fclose(f);
    return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

/* ------------------------------------------------------ the machine */

typedef struct {
    char date[64], cpu[160], os[160], kernel[160], compiler[96], load0[64], load1[64], thp[32];
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
    /* The bracketed word of "always [madvise] never": it changes RSS and faults. */
    p = strchr(slurp("/sys/kernel/mm/transparent_hugepage/enabled", buf, sizeof buf), '[');
    snprintf(m->thp, sizeof m->thp, "%.*s", p ? (int)strcspn(p + 1, "]") : 7, p ? p + 1 : "unknown");
}

static void machine_table(FILE *f, const machine_t *m)
{
    fprintf(f, "| machine | |\n|---|---|\n");
    fprintf(f, "| CPU | %s, %d cores online |\n", m->cpu, m->cores);
    fprintf(f, "| memory | %.1f GiB; transparent huge pages: %s |\n", m->mem_gib, m->thp);
    fprintf(f, "| system | %s, %s |\n", m->os, m->kernel);
    fprintf(f, "| compiler | %s (workloads at -O2) |\n", m->compiler);
    if (m->load1[0])
        fprintf(f, "| load average | %s at start, %s at end |\n", m->load0, m->load1);
    fprintf(f, "\n| allocator | library | version |\n|---|---|---|\n");
    for (int i = 0; i < cfg.nalloc; i++) {
        const alloc_t *a = &cfg.alloc[i];
        const char *lib = a->path[0] ? a->path : "the C library's ptmalloc";
        if (a->ours)
            lib = cfg.vmalloc;
        fprintf(f, "| %s | %s%s%s%s | %s |\n", a->name, lib, a->env[0] ? " with `" : "", a->env,
                a->env[0] ? "`" : "", a->version[0] ? a->version : "?");
    }
}

/* ------------------------------------------------------------- report */

static cell_t cells[NWORKLOADS][MAX_ALLOCS];

/* The same workloads run on one thread, for thread scaling: a row of their
 * own, since their checksums differ from those on the threads given. */
static cell_t one_thread_cells[NWORKLOADS][MAX_ALLOCS];

/* Whether a workload has a row in the timed tables and the chart. */
static int shown(const workload_t *w)
{
    return w->available && w->kind == TIMED;
}

/* Whether a workload also runs on one thread and has a row in the thread
 * scaling table: only in the comparison, and only with threads to compare. */
static int measures_scaling(const workload_t *w)
{
    return shown(w) && w->threads == T_GIVEN_SAME_WORK && cfg.threads >= 2 &&
           !strcmp(cfg.mode, "run");
}

/* The median of one field of a phase over a cell's runs. */
static double phase_median(const cell_t *c, int k, size_t field)
{
    double v[MAX_REPS];
    int n = 0;
    for (int i = 0; i < c->nrun; i++)
        if (c->run[i].nphase > k)
            v[n++] = *(const double *)((const char *)&c->run[i].phase[k] + field);
    return vm_measure_median(v, n);
}

static void summarize(cell_t *c)
{
    double wall[MAX_REPS], cpu[MAX_REPS], rss[MAX_REPS], fin[MAX_REPS], live[MAX_REPS];
    double flt[MAX_REPS], loops[MAX_REPS];
    int n = 0;
    for (int i = 0; i < c->nrun; i++) {
        run_t *r = &c->run[i];
        wall[n] = r->wall, cpu[n] = r->cpu, rss[n] = (double)r->maxrss_kb / 1024;
        fin[n] = (double)r->final_rss_kb / 1024, live[n] = (double)r->live_kb / 1024;
        flt[n] = (double)r->minflt, loops[n] = (double)r->loops;
        n++;
    }
    /* Phases by position: every run of a workload reports the same ones. */
    c->nphase = n ? c->run[0].nphase : 0;
    for (int k = 0; k < c->nphase; k++) {
        phase_t *ph = &c->phase[k];
        snprintf(ph->name, sizeof ph->name, "%s", c->run[0].phase[k].name);
        ph->rss_kb = phase_median(c, k, offsetof(phase_t, rss_kb));
        ph->lazy_kb = phase_median(c, k, offsetof(phase_t, lazy_kb));
        ph->live_kb = phase_median(c, k, offsetof(phase_t, live_kb));
        ph->ms = phase_median(c, k, offsetof(phase_t, ms));
    }
    c->minflt = vm_measure_median(flt, n), c->loops = vm_measure_median(loops, n);
    double lo = NAN, hi = NAN;
    for (int i = 0; i < n; i++) {
        if (!(wall[i] >= lo))
            lo = wall[i];
        if (!(wall[i] <= hi))
            hi = wall[i];
    }
    c->wall = vm_measure_median(wall, n), c->cpu = vm_measure_median(cpu, n);
    c->rss_mib = vm_measure_median(rss, n);
    c->final_mib = vm_measure_median(fin, n), c->live_mib = vm_measure_median(live, n);
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

/* Geometric mean of the values of one column, one per workload; NAN (a
 * failure, or no row) is left out, and *count says how many were not. */
static double geomean_of(const double value[NWORKLOADS], int *count)
{
    double s = 0;
    int n = 0;
    for (size_t w = 0; w < NWORKLOADS; w++) {
        if (value[w] > 0) {
            s += log(value[w]);
            n++;
        }
    }
    *count = n;
    return n ? exp(s / n) : NAN;
}

/* Geometric mean of an allocator's ratios over the workloads where it and
 * glibc both succeeded; *count says over how many. */
static double geomean(int a, int metric, int *count)
{
    double value[NWORKLOADS];
    for (size_t w = 0; w < NWORKLOADS; w++)
        value[w] = shown(&workloads[w]) ? ratio((int)w, a, metric) : NAN;
    return geomean_of(value, count);
}

/* A geometric mean row's cell: "(n of total)" when failures are left out. */
static void geomean_cell(FILE *f, double mean, int n, int total)
{
    if (n == 0)
        fprintf(f, " - |");
    else if (n < total)
        fprintf(f, " **%.2f** (%d of %d) |", mean, n, total);
    else
        fprintf(f, " **%.2f** |", mean);
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
        geomean_cell(f, g, n, total);
    }
    fprintf(f, "\n\n");
}

/* "the median of N runs", or "one run" (a static buffer: one use per call). */
static const char *runs_phrase(int n)
{
    static char buf[2][48];
    static int turn;
    char *b = buf[turn++ % 2];
    if (n == 1)
        snprintf(b, 48, "one run");
    else
        snprintf(b, 48, "the median of %d runs", n);
    return b;
}

/* The index of a workload by name, or -1 when it did not run. */
static int ran(const char *name)
{
    for (size_t w = 0; w < NWORKLOADS; w++)
        if (!strcmp(workloads[w].name, name) && workloads[w].available)
            return (int)w;
    return -1;
}

/* A header row and its alignment row: a first column, then one per allocator. */
static void alloc_header(FILE *f, const char *first)
{
    fprintf(f, "| %s |", first);
    for (int a = 0; a < cfg.nalloc; a++)
        fprintf(f, " %s |", cfg.alloc[a].name);
    fprintf(f, "\n|---|");
    for (int a = 0; a < cfg.nalloc; a++)
        fprintf(f, "---:|");
    fprintf(f, "\n");
}

static void fragment_section(FILE *f)
{
    int w = ran("fragment");
    if (w < 0)
        return;
    fprintf(f, "### Memory efficiency (fragment)\n\n");
    alloc_header(f, "MiB");
    static const char *row[] = { "peak RSS", "final RSS", "live data at the end" };
    for (int k = 0; k < 3; k++) {
        fprintf(f, "| %s |", row[k]);
        for (int a = 0; a < cfg.nalloc; a++) {
            cell_t *c = &cells[w][a];
            double v = k == 0 ? c->rss_mib : k == 1 ? c->final_mib : c->live_mib;
            if (c->failed || !(v >= 0))
                fprintf(f, " - |");
            else
                fprintf(f, " %.1f |", v);
        }
        fprintf(f, "\n");
    }
    fprintf(f, "\n");
}

static void thrash_section(FILE *f)
{
    int w = ran("thrash");
    if (w < 0)
        return;
    double loops = cells[w][0].loops;
    fprintf(f, "### Page faults per reuse (thrash)\n\n"
               "64 blocks of 1 MiB allocated, written in full and freed, %.0f times over: every "
               "loop writes 16,384 pages. An allocator that keeps the freed blocks pays their "
               "page faults once; one that hands them back to the kernel at free pays them on "
               "every loop. Faults are the process's minor faults (`ru_minflt` from `wait4`), "
               "start-up included; loops per second are over the whole run.\n\n",
            loops);
    alloc_header(f, "");
    static const char *row[] = { "loops per second", "minor page faults", "minor faults per loop" };
    for (int k = 0; k < 3; k++) {
        fprintf(f, "| %s |", row[k]);
        for (int a = 0; a < cfg.nalloc; a++) {
            cell_t *c = &cells[w][a];
            if (c->failed || !c->nrun || !(c->loops > 0))
                fprintf(f, " - |");
            else if (k == 0)
                fprintf(f, " %.1f |", c->loops / c->wall);
            else if (k == 1)
                fprintf(f, " %.0f |", c->minflt);
            else
                fprintf(f, " %.0f |", c->minflt / c->loops);
        }
        fprintf(f, "\n");
    }
    fprintf(f, "\n");
}

/* A cell's phase by name, or NULL. */
static const phase_t *phase_of(const cell_t *c, const char *name)
{
    for (int k = 0; k < c->nphase; k++)
        if (!strcmp(c->phase[k].name, name))
            return &c->phase[k];
    return NULL;
}

/* The data a memory workload held at the end of a phase, in MiB: the same
 * under every allocator, so taken from the first that finished. */
static double live_mib(int w, const char *name)
{
    for (int a = 0; a < cfg.nalloc; a++) {
        const phase_t *ph = cells[w][a].failed ? NULL : phase_of(&cells[w][a], name);
        if (ph)
            return ph->live_kb / 1024;
    }
    return NAN;
}

/* RSS at the end of a phase in MiB, and the LazyFree part of it when there is one. */
static void rss_cell(FILE *f, const cell_t *c, const char *name)
{
    const phase_t *ph = phase_of(c, name);
    if (!ph || !(ph->rss_kb >= 0)) {
        fprintf(f, " - |");
        return;
    }
    fprintf(f, " %.1f", ph->rss_kb / 1024);
    if (ph->lazy_kb >= 52)
        fprintf(f, " (lazy %.1f)", ph->lazy_kb / 1024);
    else if (ph->lazy_kb > 0)
        fprintf(f, " (lazy <0.1)");
    fprintf(f, " |");
}

/* Whether the malloc_trim a run called was its allocator's own. */
static int own_trim(const cell_t *c)
{
    return c->nrun && !strcmp(c->run[0].malloc_by, c->run[0].trim_by);
}

/* The malloc_trim column: its time, and whose it was when not the allocator's. */
static void trim_cell(FILE *f, const cell_t *c)
{
    const phase_t *ph = phase_of(c, "trim");
    if (!ph)
        fprintf(f, " - |");
    else if (own_trim(c))
        fprintf(f, " %.1f |", ph->ms);
    else
        fprintf(f, " %.1f, %s's |", ph->ms,
                !strncmp(c->run[0].trim_by, "libc.so", 7) ? "glibc" : c->run[0].trim_by);
}

/* The allocator's own release call, for a peer without a malloc_trim. */
static void release_cell(FILE *f, const cell_t *c)
{
    const phase_t *ph = phase_of(c, "release");
    if (!ph)
        fprintf(f, " - |");
    else
        fprintf(f, " %.1f in %.1f ms |", ph->rss_kb / 1024, ph->ms);
}

/* Which peers' malloc_trim was not their own, and what was called instead. */
static void release_note(FILE *f, int w)
{
    int any = 0;
    for (int a = 0; a < cfg.nalloc; a++) {
        const cell_t *c = &cells[w][a];
        if (c->failed || !c->nrun || own_trim(c))
            continue;
        fprintf(f, "%s %s%s%s", any ? ";" : "", cfg.alloc[a].name,
                c->run[0].release_call[0] ? ": " : " (no call of its own found)",
                c->run[0].release_call);
        any = 1;
    }
    if (any)
        fprintf(f, ".");
}

static void memory_section(FILE *f)
{
    int small = ran("return-small"), large = ran("return-large");
    if (small < 0 && large < 0)
        return;
    int w0 = small >= 0 ? small : large, reps = cells[w0][0].nrun;
    fprintf(f, "### Memory going back to the system (return-small, return-large)\n\n"
               "RSS in MiB (`/proc/self/statm`, read by the workload at the end of each phase; "
               "%s): at **start**; at the **peak**, after allocating %.0f MiB in "
               "blocks of random size, uniform in 16 B-8 KiB or 64 KiB-1 MiB, each written in "
               "full; right **after freeing** them all in random order; **after idling** %s, "
               "during which four blocks of 200 KiB are allocated, touched and freed every 100 "
               "ms (the activity that lets an allocator without a background thread run its "
               "purge schedule); and **after `malloc_trim(0)`**, with the time the call took. "
               "`lazy` is the part of the RSS that `/proc/self/smaps_rollup` counts as "
               "LazyFree: pages handed back with `MADV_FREE`, which the kernel takes only when "
               "memory runs short.\n\n",
            runs_phrase(reps), live_mib(w0, "peak"), cfg.scale >= 0.1 ? "3 s" : "0.1 s");
    fprintf(f, "None of the peers defines `malloc_trim`, so under them the call reaches "
               "glibc's, which has none of their memory to give back (\"glibc's\" in the trim "
               "column; the RSS does not move). The last column is what each peer offers "
               "instead, called right after: the RSS after it and its time.\n\n");
    fprintf(f, "| blocks | allocator | start | peak | after free | after idle | "
               "after malloc_trim | malloc_trim ms | peer's own release call |\n"
               "|---|---|---:|---:|---:|---:|---:|---:|---:|\n");
    for (int v = 0; v < 2; v++) {
        int w = v ? large : small;
        if (w < 0)
            continue;
        for (int a = 0; a < cfg.nalloc; a++) {
            const cell_t *c = &cells[w][a];
            fprintf(f, "| %s | %s |", a ? "" : v ? "64 KiB-1 MiB" : "16 B-8 KiB",
                    cfg.alloc[a].name);
            if (c->failed || !c->nrun) {
                fprintf(f, " **FAIL** | | | | | | |\n");
                continue;
            }
            rss_cell(f, c, "start");
            rss_cell(f, c, "peak");
            rss_cell(f, c, "freed");
            rss_cell(f, c, "idle");
            rss_cell(f, c, "trim");
            trim_cell(f, c);
            release_cell(f, c);
            fprintf(f, "\n");
        }
    }
    fprintf(f, "\nOwn release calls:");
    release_note(f, w0);
    fprintf(f, "\n\n");
}

static void trim_latency_section(FILE *f)
{
    int w = ran("trim-latency");
    if (w < 0)
        return;
    const cell_t *g = &cells[w][0];
    fprintf(f, "### malloc_trim on a big fragmented heap (trim-latency)\n\n"
               "%.0f MiB in blocks of 64 KiB-1 MiB and %.0f MiB in blocks of 16 B-8 KiB, "
               "interleaved and written in full (%.0f MiB live at the peak); half of the blocks "
               "freed in random order, leaving %.0f MiB live; then `malloc_trim(0)`, timed. "
               "RSS in MiB, times in ms, %s; allocators run one at a time. "
               "Under a peer the call is glibc's (see above), so the last columns give the "
               "peer's own release call.\n\n",
            3072 * cfg.scale, 2048 * cfg.scale, live_mib(w, "peak"), live_mib(w, "fragmented"),
            runs_phrase(g->nrun));
    fprintf(f, "| allocator | peak | after freeing half | malloc_trim ms | after malloc_trim | "
               "own release call ms | after it |\n|---|---:|---:|---:|---:|---:|---:|\n");
    for (int a = 0; a < cfg.nalloc; a++) {
        const cell_t *c = &cells[w][a];
        fprintf(f, "| %s |", cfg.alloc[a].name);
        if (c->failed || !c->nrun) {
            fprintf(f, " **FAIL** | | | | | |\n");
            continue;
        }
        rss_cell(f, c, "peak");
        rss_cell(f, c, "fragmented");
        trim_cell(f, c);
        rss_cell(f, c, "trim");
        const phase_t *rel = phase_of(c, "release");
        if (rel)
            fprintf(f, " %.1f |", rel->ms);
        else
            fprintf(f, " - |");
        rss_cell(f, c, rel ? "release" : "-");
        fprintf(f, "\n");
    }
    fprintf(f, "\nOwn release calls:");
    release_note(f, w);
    fprintf(f, "\n\n");
}

/* The ratio of allocator a to allocator b in one workload and metric, or NAN. */
static double ratio_to(int w, int a, int b, int metric)
{
    double x = ratio(w, a, metric), y = ratio(w, b, metric);
    return x > 0 && y > 0 ? x / y : NAN;
}

/* Each variant against vmalloc itself: what its options cost or save. */
static void variants_section(FILE *f)
{
    int base = -1;
    for (int a = 0; a < cfg.nalloc; a++)
        if (!strcmp(cfg.alloc[a].name, "vmalloc"))
            base = a;
    if (base < 0 || !cfg.nvariant || !shown_count())
        return;
    fprintf(f, "### Variants against vmalloc\n\nThe ratio of each variant's median to "
               "vmalloc's in the same run (below 1: the variant is faster or smaller).\n\n");
    fprintf(f, "| workload |");
    for (int a = 0; a < cfg.nalloc; a++)
        if (cfg.alloc[a].env[0])
            fprintf(f, " %s wall | CPU | peak RSS |", cfg.alloc[a].name);
    fprintf(f, "\n|---|");
    for (int a = 0; a < cfg.nalloc; a++)
        if (cfg.alloc[a].env[0])
            fprintf(f, "---:|---:|---:|");
    fprintf(f, "\n");
    for (size_t w = 0; w <= NWORKLOADS; w++) {
        int mean = w == NWORKLOADS;
        if (!mean && !shown(&workloads[w]))
            continue;
        fprintf(f, mean ? "| **geometric mean** |" : "| %s |", mean ? "" : workloads[w].name);
        for (int a = 0; a < cfg.nalloc; a++) {
            if (!cfg.alloc[a].env[0])
                continue;
            for (int metric = 0; metric < 3; metric++) {
                double r = NAN;
                if (!mean) {
                    r = ratio_to((int)w, a, base, metric);
                } else {
                    double sum = 0;
                    int n = 0;
                    for (size_t k = 0; k < NWORKLOADS; k++) {
                        double x = shown(&workloads[k]) ? ratio_to((int)k, a, base, metric) : NAN;
                        if (x > 0)
                            sum += log(x), n++;
                    }
                    r = n ? exp(sum / n) : NAN;
                }
                if (r > 0)
                    fprintf(f, mean ? " **%.3f** |" : " %.3f |", r);
                else
                    fprintf(f, " - |");
            }
        }
        fprintf(f, "\n");
    }
    fprintf(f, "\n");
}

/* How many times its throughput on one thread an allocator reaches on the
 * threads given, in a workload where each thread does the same work:
 * threads * wall on one thread / wall on the threads given (ideal: threads).
 * NAN when a run on either failed. */
static double thread_scaling(int w, int a)
{
    const cell_t *many = &cells[w][a], *one = &one_thread_cells[w][a];
    if (many->failed || one->failed || !many->nrun || !one->nrun || !(many->wall > 0))
        return NAN;
    return cfg.threads * one->wall / many->wall;
}

/* Thread scaling: each allocator's throughput on the threads given against
 * its own on one thread, for the workloads whose work grows with the threads. */
static void thread_scaling_section(FILE *f, const machine_t *m)
{
    int rows = 0;
    for (size_t w = 0; w < NWORKLOADS; w++)
        rows += measures_scaling(&workloads[w]);
    if (!rows)
        return;
    fprintf(f, "### Thread scaling\n\nIn these workloads each thread does the same work "
               "however many threads there are, so they also ran on 1 thread, interleaved with "
               "the runs above (%s per cell). A cell is the throughput on %d threads as a "
               "multiple of the throughput on one: %d × the median wall time on 1 thread / the "
               "median wall time on %d threads. The ideal is %d, every thread as fast as alone; "
               "1 means %d threads get no more done than one. Higher is better. It is not a "
               "ratio to glibc: each allocator is compared with itself. The machine bounds it "
               "too (%d cores online, shared with whatever else ran; see the load average). `~`: "
               "the runs on either thread count spread over more than 10%% of their median. "
               "FAIL: a run on either failed (see Failures).\n\n",
            runs_phrase(cfg.reps), cfg.threads, cfg.threads, cfg.threads, cfg.threads,
            cfg.threads, m->cores);
    alloc_header(f, "workload");
    for (size_t w = 0; w < NWORKLOADS; w++) {
        if (!measures_scaling(&workloads[w]))
            continue;
        fprintf(f, "| %s |", workloads[w].name);
        for (int a = 0; a < cfg.nalloc; a++) {
            double x = thread_scaling((int)w, a);
            int noisy = cells[w][a].spread > 0.10 || one_thread_cells[w][a].spread > 0.10;
            if (x > 0)
                fprintf(f, " %s%.2f |", noisy ? "~" : "", x);
            else
                fprintf(f, " **FAIL** |");
        }
        fprintf(f, "\n");
    }
    fprintf(f, "| **geometric mean** |");
    for (int a = 0; a < cfg.nalloc; a++) {
        double value[NWORKLOADS];
        for (size_t w = 0; w < NWORKLOADS; w++)
            value[w] = measures_scaling(&workloads[w]) ? thread_scaling((int)w, a) : NAN;
        int n;
        double mean = geomean_of(value, &n);
        geomean_cell(f, mean, n, rows);
    }
    fprintf(f, "\n\n");
}

static void write_markdown(FILE *f, const machine_t *m, double elapsed, int failures)
{
    int memory_mode = !strcmp(cfg.mode, "memory"), mem_reps = 0;
    for (size_t w = 0; w < NWORKLOADS; w++)
        if (workloads[w].available && workloads[w].kind == MEMORY)
            mem_reps = cells[w][0].nrun > mem_reps ? cells[w][0].nrun : mem_reps;
    fprintf(f, "# vmalloc %sbenchmark: %s\n\n", memory_mode ? "memory " : "", m->date);
    fprintf(f, "%s mode: %s per cell", cfg.quick ? "Quick" : "Full",
            runs_phrase(memory_mode ? mem_reps : cfg.reps));
    if (!memory_mode && mem_reps)
        fprintf(f, " (%d for the memory workloads)", mem_reps);
    fprintf(f, ", allocators interleaved; scale %g, %d threads for the threaded workloads; "
               "%.0f s in all.\n\n",
            cfg.scale, cfg.threads, elapsed);
    machine_table(f, m);
    if (!memory_mode && shown_count()) {
        fprintf(f, "\nEach cell: the median, then in parentheses the ratio to glibc (below 1 is "
                   "better). `~` marks a time whose runs spread over more than 10%% of the "
                   "median. FAIL: the run crashed, timed out or printed a checksum different "
                   "from glibc's (see Failures); it is left out of the geometric mean.\n\n");
        for (int metric = 0; metric < 3; metric++)
            metric_table(f, metric);
        variants_section(f);
        thread_scaling_section(f, m);
        fragment_section(f);
    } else {
        fprintf(f, "\n");
    }
    thrash_section(f);
    memory_section(f);
    trim_latency_section(f);
    if (!memory_mode && cfg.quick && !cfg.nselected)
        fprintf(f, "### Memory going back to the system\n\nNot measured in quick mode (about "
                   "a minute per repetition): see `make bench-memory`, or a full `make bench`."
                   "\n\n");

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
        for (int a = 0; a < cfg.nalloc; a++) {
            if (workloads[w].available && cells[w][a].failed)
                fprintf(f, "- %s under %s: %s\n", workloads[w].name, cfg.alloc[a].name,
                        cells[w][a].why);
            if (workloads[w].available && one_thread_cells[w][a].failed)
                fprintf(f, "- %s under %s on 1 thread (thread scaling): %s\n",
                        workloads[w].name, cfg.alloc[a].name, one_thread_cells[w][a].why);
        }
}

/* ----------------------------------------------------------------- SVG */

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

    vm_svg_begin(f, W, H);
    vm_svg_text(f, 16, 26, "start", "font-size=\"17\" font-weight=\"bold\"",
             "vmalloc and peers compared with glibc: ratio to glibc, lower is better");
    vm_svg_text(f, 16, 45, "start", "fill=\"#444\"",
             "%s; %s, %d cores; median of %d runs%s; log scale", m->date, m->cpu, m->cores,
             cfg.reps, cfg.quick ? " (quick mode)" : "");
    double lx = 16;
    for (int a = 1; a < cfg.nalloc; a++) {
        fprintf(f, "<rect x=\"%.1f\" y=\"58\" width=\"12\" height=\"12\" fill=\"%s\"/>\n", lx,
                vm_svg_color(a));
        vm_svg_text(f, lx + 17, 68.5, "start", "", "%s", cfg.alloc[a].name);
        lx += 30 + 8.0 * (double)strlen(cfg.alloc[a].name);
    }

    static const char *panel_title[] = { "wall time / glibc", "", "peak RSS / glibc" };
    for (int k = 0; k < 3; k += 2) {
        double x0 = label_w + (k ? panel_w + gap : 0);
#define XPOS(v) (x0 + (log2(v) / span + 1) / 2 * panel_w)
        vm_svg_text(f, x0 + panel_w / 2, top - 10, "middle", "font-weight=\"bold\"", "%s",
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
                vm_svg_text(f, x, top + rows * row_h + 14, "middle", "fill=\"#444\"", "1/%d",
                         1 << -e);
            else
                vm_svg_text(f, x, top + rows * row_h + 14, "middle", "fill=\"#444\"", "%d×", 1 << e);
        }
        int r = 0;
        for (size_t w = 0; w <= NWORKLOADS; w++) {
            int is_mean = w == NWORKLOADS;
            if (!is_mean && !shown(&workloads[w]))
                continue;
            double y = top + r * row_h + 5;
            if (k == 0)
                vm_svg_text(f, label_w - 8, top + r * row_h + row_h / 2 + 4, "end",
                         is_mean ? "font-weight=\"bold\"" : "", "%s",
                         is_mean ? "geometric mean" : workloads[w].name);
            for (int a = 1; a < cfg.nalloc; a++, y += bar_h + bar_gap) {
                int n;
                double v = is_mean ? geomean(a, k, &n) : ratio((int)w, a, k);
                if (!(v > 0)) {
                    if (!is_mean && cells[w][a].failed)
                        vm_svg_text(f, XPOS(1) + 4, y + bar_h - 1, "start",
                                 "font-size=\"9\" fill=\"#c00000\" font-weight=\"bold\"",
                                 "%s failed", cfg.alloc[a].name);
                    continue;
                }
                double c = fmin(fmax(v, pow(2, -span)), pow(2, span));
                double xa = XPOS(1), xb = XPOS(c);
                fprintf(f, "<rect x=\"%.1f\" y=\"%.1f\" width=\"%.1f\" height=\"%.1f\" fill=\"%s\"/>\n",
                        fmin(xa, xb), y, fmax(fabs(xb - xa), 1), bar_h, vm_svg_color(a));
                const char *clip = c != v ? (v > 1 ? ">" : "<") : "";
                if (v >= 1)
                    vm_svg_text(f, fmin(xb + 3, x0 + panel_w - 2), y + bar_h - 1,
                             xb + 30 > x0 + panel_w ? "end" : "start", "font-size=\"9\"",
                             "%s%.2f", clip, v);
                else
                    vm_svg_text(f, fmax(xb - 3, x0 + 2), y + bar_h - 1,
                             xb - 30 < x0 ? "start" : "end", "font-size=\"9\"", "%s%.2f", clip, v);
            }
            r++;
        }
#undef XPOS
    }
    vm_svg_text(f, 16, H - 14, "start", "fill=\"#444\"",
             "Bars left of the 1× line: faster (or smaller) than glibc. The numbers are in "
             "bench/results/%s.md.",
             cfg.quick ? "quick" : "latest");
    vm_svg_end(f);
}

/* ------------------------------------------------------------ the modes */

static void print_cell_progress(size_t w, int tty)
{
    fprintf(stderr, "%s%-12s", tty ? "\r\033[K" : "", workloads[w].name);
    for (int a = 0; a < cfg.nalloc; a++) {
        cell_t *c = &cells[w][a];
        const phase_t *last = c->nphase ? &c->phase[c->nphase - 1] : NULL;
        if (c->failed)
            fprintf(stderr, "  %s FAIL", cfg.alloc[a].name);
        else if (workloads[w].kind == MEMORY && last)
            fprintf(stderr, "  %s %.0f MiB after %s", cfg.alloc[a].name, last->rss_kb / 1024,
                    last->name);
        else if (a == 0)
            fprintf(stderr, "  %s %.3fs", cfg.alloc[a].name, c->wall);
        else
            fprintf(stderr, "  %s %.3fs %.2fx", cfg.alloc[a].name, c->wall, ratio((int)w, a, 0));
    }
    fprintf(stderr, "\n");
    if (!measures_scaling(&workloads[w]))
        return;
    fprintf(stderr, "%-12s thread scaling (ideal %d):", "", cfg.threads);
    for (int a = 0; a < cfg.nalloc; a++) {
        double x = thread_scaling((int)w, a);
        if (x > 0)
            fprintf(stderr, "  %s %.2f", cfg.alloc[a].name, x);
        else
            fprintf(stderr, "  %s FAIL", cfg.alloc[a].name);
    }
    fprintf(stderr, "\n");
}

/* Record one run in its cell of a workload's row (cells[w], or
 * one_thread_cells[w]): a failure, or a checksum unlike glibc's in the same
 * row, fails the cell for good. Returns whether the cell is still good. */
static int record(cell_t row[MAX_ALLOCS], int a, const run_t *r)
{
    cell_t *c = &row[a];
    cell_t *g = &row[0];
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

/* Failed cells, those of the runs on one thread included; only_ours counts
 * only vmalloc's (and its variants') and glibc's. */
static int failures_count(int only_ours)
{
    int n = 0;
    for (size_t w = 0; w < NWORKLOADS; w++)
        for (int a = 0; a < cfg.nalloc; a++)
            if (workloads[w].available && (a == 0 || cfg.alloc[a].ours || !only_ours))
                n += cells[w][a].failed + one_thread_cells[w][a].failed;
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

    int memory_mode = !strcmp(cfg.mode, "memory");
    fprintf(stderr, "runner: %s%s mode, %d runs each (%d for memory workloads), scale %g, "
                    "%d threads; allocators:",
            cfg.quick ? "quick" : "full", memory_mode ? " memory" : "", cfg.reps, cfg.mem_reps,
            cfg.scale, cfg.threads);
    for (int a = 0; a < cfg.nalloc; a++)
        fprintf(stderr, " %s", cfg.alloc[a].name);
    fprintf(stderr, "\n");

    int tty = isatty(2);
    double start = vm_measure_now();
    for (size_t w = 0; w < NWORKLOADS; w++) {
        if (!workloads[w].available)
            continue;
        if (workloads[w].script) {
            /* One run untimed, so that no allocator pays for a cold file cache. */
            run_t r;
            if (tty)
                fprintf(stderr, "\r%-12s warming up", workloads[w].name);
            run_one(&workloads[w], &cfg.alloc[0], cfg.scale, cfg.threads, 0, &r);
        }
        int reps = workloads[w].kind == MEMORY ? cfg.mem_reps : cfg.reps;
        /* For thread scaling, each allocator on one thread is one more column
         * in the rotation: A B C, then A B C on one thread, every repetition. */
        int passes = measures_scaling(&workloads[w]) ? 2 : 1;
        for (int rep = 0; rep < reps; rep++) {
            for (int pass = 0; pass < passes; pass++) {
                cell_t *row = pass ? one_thread_cells[w] : cells[w];
                int threads = pass ? 1 : cfg.threads;
                for (int a = 0; a < cfg.nalloc; a++) {
                    if (row[a].failed)
                        continue;
                    if (tty)
                        fprintf(stderr, "\r%-12s run %d of %d, %-10s%-12s", workloads[w].name,
                                rep + 1, reps, cfg.alloc[a].name, pass ? " on 1 thread" : "");
                    run_t r;
                    run_one(&workloads[w], &cfg.alloc[a], cfg.scale, threads, 0, &r);
                    record(row, a, &r);
                }
            }
        }
        for (int a = 0; a < cfg.nalloc; a++) {
            summarize(&cells[w][a]);
            if (passes == 2)
                summarize(&one_thread_cells[w][a]);
        }
        print_cell_progress(w, tty);
    }
    double elapsed = vm_measure_now() - start;
    char buf[256];
    slurp("/proc/loadavg", buf, sizeof buf);
    snprintf(m.load1, sizeof m.load1, "%.*s", 14, buf);
    int failures = failures_count(0);

    fprintf(stdout, "\n");
    write_markdown(stdout, &m, elapsed, failures);

    if (cfg.out[0] && memory_mode) {
        /* The memory report has no chart: its own file, the quick one kept apart. */
        char md[PATH_MAX];
        mkdir(cfg.out, 0755);
        FILE *f = open_out(cfg.quick ? "quick-memory.md" : "memory.md", md, sizeof md);
        if (f) {
            write_markdown(f, &m, elapsed, failures);
            fclose(f);
            fprintf(stderr, "runner: wrote %s\n", md);
        }
    } else if (cfg.out[0]) {
        mkdir(cfg.out, 0755);
        char md[PATH_MAX], svg[PATH_MAX];
        const char *base = cfg.quick ? "quick" : "latest";
        char name[64];
        snprintf(name, sizeof name, "%s.md", base);
        FILE *f = open_out(name, md, sizeof md);
        if (f) {
            write_markdown(f, &m, elapsed, failures);
            if (shown_count())
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
    int ours = failures_count(1);
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
                printf("skip %-12s %s\n", x->name, x->note);
                skipped++;
            }
            continue;
        }
        for (int a = 0; a < cfg.nalloc; a++) {
            run_t r;
            run_one(x, &cfg.alloc[a], cfg.scale, cfg.threads, 0, &r);
            if (!record(cells[w], a, &r) && a == 0) {
                printf("FAIL %-12s glibc: %s\n", x->name, cells[w][0].why);
                failed++;
                break;
            }
            if (a == 0)
                continue;
            if (cells[w][a].failed) {
                printf("FAIL %-12s %s: %s\n", x->name, cfg.alloc[a].name, cells[w][a].why);
                failed++;
            } else {
                printf("ok   %-12s %-9s checksum=%s %.2fs\n", x->name, cfg.alloc[a].name,
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
    { "pair", 4000, "malloc + free, 4000 B" },
    { "xfree", 16, "cross-thread free, 16 B" },  { "xfree", 64, "cross-thread free, 64 B" },
    { "xfree", 256, "cross-thread free, 256 B" }, { "xfree", 1024, "cross-thread free, 1 KiB" },
    { "resize", 100, "realloc within its block, 100-107 B" },
    { "move", 100, "realloc to another class, 100 B <-> 300 B" },
    { "aligned", 100, "aligned_alloc(64) + free, 100 B" },
    { "new", 64, "C++ new + sized delete, 64 B" },
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
        apply_env(a);
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
               "through a pipe (the hand-over adds about one instruction per block). A realloc "
               "resizes one block back and forth, within its block or between two classes. C++ new "
               "and delete are the allocator's own where it defines them, else libstdc++'s, "
               "which call malloc and free. "
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
            "usage: runner [run|memory|smoke|instr|list] [options] [WORKLOAD...]\n"
            "       runner measure FILE PRELOAD CMD [ARG...]\n"
            "modes: run (default) the timed workloads, and the memory ones unless quick;\n"
            "       memory the memory workloads and thrash, into memory.md\n"
            "options:\n"
            "  --quick            small scale and 3 runs (about a minute on 2 cores)\n"
            "  --reps N           runs per workload and allocator (default 5, quick 3)\n"
            "  --mem-reps N       runs of each memory workload (default 3, quick 1; --reps sets both)\n"
            "  --scale X          work per run (default 1; quick 0.15; smoke 0.02)\n"
            "  --threads N        threads for the threaded workloads (default: cores, at least 2)\n"
            "  --timeout S        seconds before a run is killed and failed (default 300)\n"
            "  --only A,B         only these allocators (glibc always runs)\n"
            "  --alloc NAME=LIB   use exactly the allocators given (glibc= for glibc)\n"
            "  --variant NAME=VAR=VALUE[ VAR=VALUE...]\n"
            "                     one more column: vmalloc with these environment variables\n"
            "                     (repeatable), e.g. --variant vmalloc-nocheck=VMALLOC_CHECK=0\n"
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
        if (!strcmp(m, "run") || !strcmp(m, "memory") || !strcmp(m, "smoke") ||
            !strcmp(m, "instr") || !strcmp(m, "list")) {
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
        else if (ARG("--mem-reps"))
            cfg.mem_reps = atoi(v);
        else if (ARG("--variant"))
            parse_variant(v);
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
    if (!cfg.mem_reps)
        cfg.mem_reps = cfg.reps ? cfg.reps : smoke || cfg.quick ? 1 : 3;
    if (!cfg.reps)
        cfg.reps = smoke ? 1 : cfg.quick ? 3 : 5;
    if (cfg.reps < 1 || cfg.reps > MAX_REPS || cfg.mem_reps < 1 || cfg.mem_reps > MAX_REPS)
        fail("--reps and --mem-reps must be 1-%d", MAX_REPS);
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
            printf(" %s%s%s%s%s%s", cfg.alloc[a].name, cfg.alloc[a].path[0] ? "=" : "",
                   cfg.alloc[a].path, cfg.alloc[a].env[0] ? " (" : "", cfg.alloc[a].env,
                   cfg.alloc[a].env[0] ? ")" : "");
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
