/* Measuring a program from outside: the clock, the CPU time in an rusage, medians. */
#include "measure.h"

#include <math.h>
#include <stdlib.h>
#include <time.h>

double vm_measure_now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* A timeval in seconds. */
static double timeval_seconds(struct timeval tv) {
  return (double)tv.tv_sec + (double)tv.tv_usec / 1e6;
}

double vm_measure_cpu_seconds(const struct rusage *usage) {
  return timeval_seconds(usage->ru_utime) + timeval_seconds(usage->ru_stime);
}

/* Ascending order, for qsort. */
static int compare_doubles(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return (x > y) - (x < y);
}

double vm_measure_median(double *values, int count) {
  if (count <= 0)
    return NAN;
  qsort(values, (size_t)count, sizeof *values, compare_doubles);
  return count % 2 ? values[count / 2] : (values[count / 2 - 1] + values[count / 2]) / 2;
}
