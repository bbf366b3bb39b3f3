/* `vmalloc compare`: the program under glibc, vmalloc and each installed peer, measured from
 * outside, then a table on stdout and a chart of RSS over time.
 *
 * Each run is a fork and exec with LD_PRELOAD naming the allocator alone (none for glibc).
 * Runs are interleaved (glibc, vmalloc, peers, then again) so that a slow spell of a shared
 * machine hurts them all alike, and medians are reported. While a run lasts, the RSS of its
 * whole process tree is sampled every 10 ms; this process is made the subreaper of the tree,
 * so that processes orphaned on the way stay in it. A run that fails marks its allocator FAIL:
 * it is reported with the end of its stderr and never averaged in. */
#include "cli.h"
#include "compare.h"
#include "measure.h"
#include "peers.h"
#include "proctree.h"

#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

enum { MAX_ALLOCATORS = 2 + VM_PEER_COUNT, STDERR_TAIL_LINES = 12 };
/* Fine enough to follow a program that lives a fraction of a second; coarse enough that the
 * sampling (a read of /proc/PID/stat per process) stays cheap: under 1% of one core with 70
 * processes on the machine. */
static const double sample_interval = 0.010;
/* How long to wait for what a run left behind to die once killed. */
static const double leftover_grace = 1.0;

/* The files every run's standard streams go to. */
typedef struct {
  int null_in, null_out;
  int stderr_capture; /* an anonymous file, emptied before each run */
} streams_t;

/* A signal that asks us to stop: the run in progress is killed before we go. */
static volatile sig_atomic_t stop_signal;
/* The chart, opened (and emptied) before the runs: removed if we are stopped. */
static const char *chart_path;

static void on_stop_signal(int signal_number) { stop_signal = signal_number; }

/* Waits for SIGCHLD (blocked, so it stays pending) at most `seconds`; a stop signal ends the
 * wait early too. */
static void wait_for_child_signal(double seconds) {
  if (seconds <= 0)
    return;
  sigset_t child;
  sigemptyset(&child);
  sigaddset(&child, SIGCHLD);
  struct timespec timeout = {(time_t)seconds, (long)((seconds - (double)(time_t)seconds) * 1e9)};
  sigtimedwait(&child, NULL, &timeout);
}

/* Reaps what a run left behind, after its process group was killed; gives up on processes
 * that left the group, which then count in the runs that follow. */
static void reap_leftovers(void) {
  double give_up = vm_measure_now() + leftover_grace;
  for (;;) {
    pid_t reaped = waitpid(-1, NULL, WNOHANG);
    if (reaped > 0)
      continue;
    if (reaped < 0 || vm_measure_now() >= give_up)
      return;
    wait_for_child_signal(0.01);
  }
}

/* Appends a sample to the run's line; -1 when out of memory. */
static int add_point(vm_run_t *run, double seconds, double rss_mib) {
  if (run->point_count == run->point_capacity) {
    size_t capacity = run->point_capacity ? 2 * run->point_capacity : 1024;
    vm_rss_point_t *grown = realloc(run->points, capacity * sizeof *grown);
    if (!grown)
      return -1;
    run->points = grown, run->point_capacity = capacity;
  }
  run->points[run->point_count++] = (vm_rss_point_t){seconds, rss_mib};
  return 0;
}

/* The child's side of a run: its streams, the allocator, then the program. */
static _Noreturn void start_program(const vm_allocator_t *a, char **command,
                                    const streams_t *streams) {
  sigset_t none;
  sigemptyset(&none);
  sigprocmask(SIG_SETMASK, &none, NULL);
  /* A group of its own: what it leaves running can be killed with it. */
  setpgid(0, 0);
  dup2(streams->null_in, 0);
  dup2(streams->null_out, 1);
  dup2(streams->stderr_capture, 2);
  if (a->library[0])
    setenv("LD_PRELOAD", a->library, 1);
  else
    unsetenv("LD_PRELOAD");
  execvp(command[0], command);
  dprintf(2, "vmalloc: cannot run %s: %s\n", command[0], strerror(errno));
  _exit(VM_EXIT_NOT_FOUND);
}

/* The last lines of what the run wrote to stderr. */
static void read_stderr_tail(int fd, char *tail, size_t cap) {
  struct stat st;
  tail[0] = 0;
  if (fstat(fd, &st) || st.st_size == 0)
    return;
  size_t want = (size_t)st.st_size < cap - 1 ? (size_t)st.st_size : cap - 1;
  ssize_t got = pread(fd, tail, want, st.st_size - (off_t)want);
  if (got <= 0)
    return;
  tail[got] = 0;
  char *end = tail + got;
  while (end > tail && end[-1] == '\n')
    *--end = 0;
  char *start = end;
  for (int lines = 0; start > tail; start--)
    if (start[-1] == '\n' && ++lines == STDERR_TAIL_LINES)
      break;
  memmove(tail, start, strlen(start) + 1);
}

/* Whether ld.so said it could not preload the library: it goes on without it, and the run
 * would measure glibc under another allocator's name. */
static int preload_was_refused(int fd) {
  char head[4096];
  ssize_t got = pread(fd, head, sizeof head - 1, 0);
  if (got <= 0)
    return 0;
  head[got] = 0;
  return strstr(head, "cannot be preloaded") != NULL;
}

/* Samples the RSS of the program's process tree every 10 ms until the program exits, into
 * run->points; its exit is noticed without reaping it, so that its pid, and with it its
 * process group, stays ours to kill. Returns the highest sample, or -1 on an error or a stop
 * signal (the program is then killed). */
static double sample_until_exit(pid_t pid, double start, vm_run_t *run) {
  pid_t self = getpid();
  double next_sample = start, peak_mib = 0;
  for (;;) {
    siginfo_t exited = {0};
    if (waitid(P_PID, (id_t)pid, &exited, WEXITED | WNOHANG | WNOWAIT) < 0 && errno != EINTR)
      return -1;
    if (exited.si_pid == pid)
      return peak_mib;
    if (stop_signal) {
      kill(-pid, SIGKILL);
      waitpid(pid, NULL, 0);
      return -1;
    }
    double now = vm_measure_now();
    if (now >= next_sample) {
      vm_tree_sample_t sample;
      static int warned;
      if (vm_proctree_sample(self, pid, &sample)) {
        if (!warned++)
          fprintf(stderr, "vmalloc: cannot read /proc (%s): peak RSS is only the kernel's "
                          "high-water mark, and final RSS is unknown\n", strerror(errno));
      } else if (!sample.leader_exiting) {
        /* Once the program is exiting its memory is being unmapped: the last sample before
         * that is its final RSS. */
        double rss_mib = (double)sample.rss_kb / 1024;
        if (add_point(run, now - start, rss_mib))
          return -1;
        if (rss_mib > peak_mib)
          peak_mib = rss_mib;
      }
      next_sample += sample_interval;
      if (next_sample <= now) /* we fell behind: skip the missed ticks */
        next_sample = now + sample_interval;
    }
    wait_for_child_signal(next_sample - vm_measure_now());
  }
}

/* Whether a finished run failed, and how, into run->why ("" when it did not). */
static void judge(const vm_allocator_t *a, int status, const streams_t *streams,
                  vm_run_t *run) {
  if (WIFSIGNALED(status))
    snprintf(run->why, sizeof run->why, "killed by signal %d (%s)", WTERMSIG(status),
             strsignal(WTERMSIG(status)));
  else if (WEXITSTATUS(status))
    snprintf(run->why, sizeof run->why, "exit status %d", WEXITSTATUS(status));
  else if (a->library[0] && preload_was_refused(streams->stderr_capture))
    snprintf(run->why, sizeof run->why, "ld.so could not preload %s", a->library);
  run->failed = run->why[0] != 0;
  if (run->failed)
    read_stderr_tail(streams->stderr_capture, run->stderr_tail, sizeof run->stderr_tail);
}

/* Runs the program once under allocator a and measures it. Returns 0, or -1 when it cannot
 * make the run or a stop signal came. */
static int run_once(const vm_allocator_t *a, char **command, const streams_t *streams,
                    vm_run_t *run) {
  if (ftruncate(streams->stderr_capture, 0) || lseek(streams->stderr_capture, 0, SEEK_SET))
    return -1;
  struct rusage before, after, usage;
  getrusage(RUSAGE_CHILDREN, &before);
  fflush(NULL);
  double start = vm_measure_now();
  pid_t pid = fork();
  if (pid < 0)
    return -1;
  if (pid == 0)
    start_program(a, command, streams);
  setpgid(pid, pid); /* as the child does: whichever runs first */
  double peak_mib = sample_until_exit(pid, start, run);
  if (peak_mib < 0)
    return -1;
  run->wall = vm_measure_now() - start;
  kill(-pid, SIGKILL); /* what it left running in its group would weigh on the next runs */
  int status;
  while (wait4(pid, &status, 0, &usage) < 0)
    if (errno != EINTR)
      return -1;
  reap_leftovers();
  /* The whole tree's CPU time: every process reaped during the run, by it or by us. */
  getrusage(RUSAGE_CHILDREN, &after);
  run->cpu = vm_measure_cpu_seconds(&after) - vm_measure_cpu_seconds(&before);
  /* The kernel's high-water mark of the program itself catches a peak between samples. */
  double kernel_peak_mib = (double)usage.ru_maxrss / 1024;
  run->peak_mib = kernel_peak_mib > peak_mib ? kernel_peak_mib : peak_mib;
  run->final_mib = run->point_count ? run->points[run->point_count - 1].rss_mib : NAN;
  judge(a, status, streams, run);
  return 0;
}

/* glibc, vmalloc, then each peer that is installed. */
static int find_allocators(const char *vmalloc_library, vm_allocator_t *allocators) {
  int count = 0;
  snprintf(allocators[count++].name, sizeof allocators->name, "glibc");
  vm_allocator_t *vmalloc = &allocators[count++];
  snprintf(vmalloc->name, sizeof vmalloc->name, "vmalloc");
  snprintf(vmalloc->library, sizeof vmalloc->library, "%s", vmalloc_library);
  for (int i = 0; i < VM_PEER_COUNT; i++) {
    vm_allocator_t *peer = &allocators[count];
    if (vm_peer_locate(&vm_peers[i], peer->library, sizeof peer->library)) {
      snprintf(peer->name, sizeof peer->name, "%s", vm_peers[i].name);
      count++;
    }
  }
  return count;
}

/* The medians of an allocator's runs, and the run to chart: the one of median wall time
 * (the lower middle one for an even count), or the failed one. */
static void summarize(vm_allocator_t *a) {
  if (a->failure) {
    a->charted = a->failure;
    return;
  }
  double wall[VM_MAX_RUNS], cpu[VM_MAX_RUNS], peak[VM_MAX_RUNS], final[VM_MAX_RUNS];
  int finals = 0; /* a run too short to be sampled has no final RSS */
  for (int i = 0; i < a->run_count; i++) {
    wall[i] = a->runs[i].wall, cpu[i] = a->runs[i].cpu, peak[i] = a->runs[i].peak_mib;
    if (!isnan(a->runs[i].final_mib))
      final[finals++] = a->runs[i].final_mib;
  }
  a->wall = vm_measure_median(wall, a->run_count);
  a->cpu = vm_measure_median(cpu, a->run_count);
  a->peak_mib = vm_measure_median(peak, a->run_count);
  a->final_mib = vm_measure_median(final, finals);
  /* wall[] is sorted now: its lower middle value names the run. */
  double middle = wall[(a->run_count - 1) / 2];
  for (int i = 0; i < a->run_count && !a->charted; i++)
    if (a->runs[i].wall == middle)
      a->charted = &a->runs[i];
}

/* Appends n bytes of s to text, as far as they fit. */
static void append(char *text, size_t cap, size_t *len, const char *s, size_t n) {
  if (*len + n >= cap)
    n = cap - 1 - *len;
  memcpy(text + *len, s, n);
  *len += n;
  text[*len] = 0;
}

/* The program as a shell would show it: arguments that need it are single-quoted. */
static void describe_command(char **command, char *text, size_t cap) {
  static const char plain_characters[] = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
                                         "0123456789_@%+=:,./-";
  size_t len = 0;
  text[0] = 0;
  for (char **arg = command; *arg; arg++) {
    if (arg != command)
      append(text, cap, &len, " ", 1);
    if (**arg && strspn(*arg, plain_characters) == strlen(*arg)) {
      append(text, cap, &len, *arg, strlen(*arg));
      continue;
    }
    append(text, cap, &len, "'", 1);
    for (const char *c = *arg; *c; c++)
      if (*c == '\'') /* close the quotes, an escaped quote, open them again */
        append(text, cap, &len, "'\\''", 4);
      else
        append(text, cap, &len, c, 1);
    append(text, cap, &len, "'", 1);
  }
}

/* Standard streams for the runs; stops and leftovers handled. 0, or -1 with errno. */
static int prepare(streams_t *streams) {
  streams->null_in = open("/dev/null", O_RDONLY | O_CLOEXEC);
  streams->null_out = open("/dev/null", O_WRONLY | O_CLOEXEC);
  streams->stderr_capture = memfd_create("vmalloc-compare-stderr", MFD_CLOEXEC);
  if (streams->null_in < 0 || streams->null_out < 0 || streams->stderr_capture < 0)
    return -1;
  /* SIGCHLD stays pending for sigtimedwait; stop signals interrupt it and end the run. */
  sigset_t child;
  sigemptyset(&child);
  sigaddset(&child, SIGCHLD);
  sigprocmask(SIG_BLOCK, &child, NULL);
  struct sigaction stop = {.sa_handler = on_stop_signal};
  sigemptyset(&stop.sa_mask);
  sigaction(SIGINT, &stop, NULL);
  sigaction(SIGTERM, &stop, NULL);
  sigaction(SIGHUP, &stop, NULL);
  /* Orphans of the program are re-parented to us rather than to init: they stay in the
   * sampled tree, and we reap them. */
  return prctl(PR_SET_CHILD_SUBREAPER, 1) ? -1 : 0;
}

/* Ends like the stop signal would have ended us, now that the run in progress is gone. */
static _Noreturn void stop_now(void) {
  int signal_number = stop_signal;
  unlink(chart_path);
  signal(signal_number, SIG_DFL);
  raise(signal_number);
  _exit(128 + signal_number);
}

/* Every run: round after round, each allocator once per round, until one of its runs fails.
 * Returns how many allocators failed, or -1 when a run could not be made. */
static int run_rounds(vm_allocator_t *allocators, int count, const vm_cli_options_t *options,
                      const streams_t *streams) {
  int progress = isatty(2), failures = 0;
  for (int round = 0; round < options->runs; round++)
    for (int i = 0; i < count; i++) {
      vm_allocator_t *a = &allocators[i];
      if (a->failure)
        continue;
      if (stop_signal)
        stop_now();
      if (progress)
        fprintf(stderr, "\rvmalloc compare: run %d of %d, %-10s", round + 1, options->runs,
                a->name);
      vm_run_t *run = &a->runs[a->run_count++];
      if (run_once(a, options->command, streams, run)) {
        if (stop_signal)
          stop_now();
        fprintf(stderr, "%svmalloc: cannot make run %d under %s: %s\n", progress ? "\n" : "",
                round + 1, a->name, strerror(errno));
        return -1;
      }
      if (run->failed) {
        a->failure = run;
        failures++;
        fprintf(stderr, "%svmalloc compare: %s failed in run %d: %s\n", progress ? "\n" : "",
                a->name, round + 1, run->why);
      }
    }
  if (progress)
    fprintf(stderr, "\r\033[K");
  return failures;
}

int vm_cli_compare(const vm_cli_options_t *options) {
  char library[PATH_MAX];
  if (vm_cli_find_library(options->library, library, sizeof library))
    return VM_EXIT_OWN_FAILURE;
  int unrunnable = vm_cli_check_program(options->command[0]);
  if (unrunnable)
    return unrunnable;
  vm_allocator_t allocators[MAX_ALLOCATORS] = {0};
  int count = find_allocators(library, allocators);
  for (int i = 0; i < count; i++)
    if (!(allocators[i].runs = calloc((size_t)options->runs, sizeof(vm_run_t)))) {
      fprintf(stderr, "vmalloc: out of memory\n");
      return VM_EXIT_OWN_FAILURE;
    }
  streams_t streams;
  if (prepare(&streams)) {
    fprintf(stderr, "vmalloc: cannot prepare the runs: %s\n", strerror(errno));
    return VM_EXIT_OWN_FAILURE;
  }
  /* Opened now, so that a chart that cannot be written is known before the runs. */
  FILE *chart = fopen(options->svg_path, "w");
  if (!chart) {
    fprintf(stderr, "vmalloc: cannot write %s: %s\n", options->svg_path, strerror(errno));
    return VM_EXIT_OWN_FAILURE;
  }
  chart_path = options->svg_path;
  int failures = run_rounds(allocators, count, options, &streams);
  if (failures < 0) {
    fclose(chart);
    unlink(chart_path);
    return VM_EXIT_OWN_FAILURE;
  }

  char command[4096];
  describe_command(options->command, command, sizeof command);
  for (int i = 0; i < count; i++)
    summarize(&allocators[i]);
  vm_table_print(allocators, count, command, options->runs);
  int written = vm_chart_write(chart, allocators, count, command, options->runs);
  if (fclose(chart) || written) {
    fprintf(stderr, "vmalloc: cannot write %s: %s\n", options->svg_path, strerror(errno));
    return VM_EXIT_OWN_FAILURE;
  }
  printf("\nchart: %s (each allocator's run of median wall time)\n", options->svg_path);
  for (int i = 0; i < count; i++) {
    for (int r = 0; r < allocators[i].run_count; r++)
      free(allocators[i].runs[r].points);
    free(allocators[i].runs);
  }
  return failures ? 1 : 0;
}
