/* The report of `vmalloc compare` on stdout: the table of medians and ratios to glibc, the
 * libraries compared, and each failure with the end of its stderr. */
#include "compare.h"

#include <gnu/libc-version.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

/* A table cell: the value, or "-" when there is none. */
static void print_value(double value, int width, int decimals) {
  if (!isnan(value))
    printf(" %*.*f", width, decimals, value);
  else
    printf(" %*s", width, "-");
}

/* The ratio of a value to glibc's, "-" when either is missing or glibc's is 0. */
static void print_ratio(double value, double reference) {
  print_value(reference > 0 && !isnan(value) ? value / reference : NAN, 6, 2);
}

/* One allocator's row: its medians and their ratios to glibc's, or FAIL and why. */
static void print_row(const vm_allocator_t *a, const vm_allocator_t *glibc, int runs_each) {
  printf("%-10s", a->name);
  if (a->failure) {
    printf(" %8s  %s (run %d of %d)\n", "FAIL", a->failure->why,
           (int)(a->failure - a->runs) + 1, runs_each);
    return;
  }
  /* No ratios against a glibc run that failed: its numbers mean nothing. */
  int reference = !glibc->failure;
  print_value(a->wall, 8, 3);
  print_ratio(a->wall, reference ? glibc->wall : NAN);
  print_value(a->cpu, 8, 3);
  print_ratio(a->cpu, reference ? glibc->cpu : NAN);
  print_value(a->peak_mib, 9, 1);
  print_ratio(a->peak_mib, reference ? glibc->peak_mib : NAN);
  print_value(a->final_mib, 9, 1);
  print_ratio(a->final_mib, reference ? glibc->final_mib : NAN);
  printf("\n");
}

/* How an allocator's run failed, and the end of what it wrote to stderr. */
static void print_failure(const vm_allocator_t *a, int runs_each) {
  printf("\n%s failed in run %d of %d: %s. ", a->name, (int)(a->failure - a->runs) + 1,
         runs_each, a->failure->why);
  if (!a->failure->stderr_tail[0]) {
    printf("It wrote nothing to stderr.\n");
    return;
  }
  printf("The end of its stderr:\n");
  for (const char *line = a->failure->stderr_tail; *line;) {
    size_t len = strcspn(line, "\n");
    printf("    %.*s\n", (int)len, line);
    line += len + (line[len] == '\n');
  }
}

void vm_table_print(const vm_allocator_t *allocators, int count, const char *command,
                    int runs_each) {
  printf("vmalloc compare: %s\n", command);
  if (runs_each == 1)
    printf("one run per allocator; ratios to glibc (below 1: less time or memory than glibc)\n\n");
  else
    printf("%d runs per allocator, interleaved; medians; ratios to glibc (below 1: less time or "
           "memory than glibc)\n\n",
           runs_each);
  printf("%-10s %8s %6s %8s %6s %9s %6s %9s %6s\n", "allocator", "wall s", "/glibc", "CPU s",
         "/glibc", "peak MiB", "/glibc", "final MiB", "/glibc");
  for (int i = 0; i < count; i++)
    print_row(&allocators[i], &allocators[0], runs_each);
  printf("\nRSS is that of the process tree (the program and every process it starts), sampled "
         "every 10 ms\nfrom /proc; peak is the highest sample, or the kernel's high-water mark "
         "of the program if\nhigher; final is the last sample before the program exited.\n");
  printf("\n%-10s %s, nothing preloaded\n", "glibc", gnu_get_libc_version());
  for (int i = 1; i < count; i++)
    printf("%-10s %s\n", allocators[i].name, allocators[i].library);
  if (allocators[0].failure)
    printf("\nThe program fails on glibc itself, with no allocator preloaded (%s): that failure "
           "is the\nprogram's own, or its input's, not an allocator's.\n",
           allocators[0].failure->why);
  for (int i = 0; i < count; i++)
    if (allocators[i].failure)
      print_failure(&allocators[i], runs_each);
}
