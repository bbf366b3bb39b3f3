/* Measuring a program from outside: the clock, the CPU time in an rusage, medians.
 * Shared by the vmalloc command and bench/runner.c. */
#ifndef VM_CLI_MEASURE_H
#define VM_CLI_MEASURE_H

#include <sys/resource.h>

/* Seconds on the monotonic clock: differences are wall times that NTP cannot bend. */
double vm_measure_now(void);

/* User plus system time in an rusage, in seconds. */
double vm_measure_cpu_seconds(const struct rusage *usage);

/* The median of `count` values (sorted in place); NAN when there are none. An even count
 * gives the mean of the middle two. */
double vm_measure_median(double *values, int count);

#endif
