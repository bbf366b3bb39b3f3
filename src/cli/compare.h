/* `vmalloc compare`: the measurements, made by compare.c, printed by table.c and drawn by
 * chart.c. */
#ifndef VM_CLI_COMPARE_H
#define VM_CLI_COMPARE_H

#include <limits.h>
#include <stddef.h>
#include <stdio.h>

/* The resident memory of the program's process tree at one moment of a run. */
typedef struct {
  double seconds; /* since the run started */
  double rss_mib;
} vm_rss_point_t;

/* One run of the program under one allocator. */
typedef struct {
  int failed;
  char why[PATH_MAX + 64];  /* how it failed: "exit status 3", "killed by signal 9 (Killed)" */
  char stderr_tail[2048];   /* the end of what it wrote to stderr, when it failed */
  double wall, cpu;         /* seconds */
  double peak_mib, final_mib;
  vm_rss_point_t *points;   /* every 10 ms, in time order */
  size_t point_count, point_capacity;
} vm_run_t;

/* One allocator and its runs. */
typedef struct {
  char name[32];
  char library[PATH_MAX]; /* what is preloaded; "" for glibc */
  vm_run_t *runs;
  int run_count;
  const vm_run_t *failure; /* the run that failed (no more are made), or NULL */
  double wall, cpu, peak_mib, final_mib; /* medians over the runs, when none failed */
  const vm_run_t *charted; /* the run drawn: the failed one, or the one of median wall time */
} vm_allocator_t;

/* table.c: prints the report on stdout: the table, the libraries, the failures. */
void vm_table_print(const vm_allocator_t *allocators, int count, const char *command,
                    int runs_each);

/* chart.c: writes the chart of RSS over time, one line per allocator, to f; `command` is
 * the program as text, `runs_each` the runs per allocator. Returns 0, or -1 on a write
 * error. */
int vm_chart_write(FILE *f, const vm_allocator_t *allocators, int count, const char *command,
                   int runs_each);

#endif
