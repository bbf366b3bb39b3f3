/* Options in a real process: VMALLOC_VERBOSE=1 prints every option in force at start-up,
 * and a bad value prints one warning line naming the variable and keeps the default.
 * Options are read once at start-up, so each case re-runs this program with its
 * environment set and reads what it wrote on stderr. */
#include <malloc.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>

#include <cmocka.h>

#include "../testutil.h"

/* Runs this program as "child" with the assignments (NULL-ended) added to its environment;
 * returns its stderr in err and checks that it exited with 0. */
static void rerun(const char *const *assignments, char *err, size_t size) {
  int status = run_self((const char *[]){"child", NULL}, assignments, err, size, NULL);
  assert_int_not_equal(status, -1);
  if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
    fail_msg("child with %s failed; it said:\n%s", assignments[0], err);
}

static int count_lines(const char *text, const char *prefix) {
  int n = 0;
  for (const char *line = text; *line != '\0';) {
    n += strncmp(line, prefix, strlen(prefix)) == 0;
    const char *end = strchr(line, '\n');
    line = end != NULL ? end + 1 : line + strlen(line);
  }
  return n;
}

/* The child: allocates (which reads the options) and says nothing itself. */
static int child(void) {
  void *volatile p = malloc(100);
  free(p);
  return 0;
}

static void verbose_prints_every_option(void **state) {
  (void)state;
  char err[8192];
  rerun((const char *[]){"VMALLOC_VERBOSE=1", NULL}, err, sizeof err);
  static const char *const expected[] = {
      "vmalloc: VMALLOC_VERBOSE=1  (",        "vmalloc: VMALLOC_STATS=off  (",
      "vmalloc: VMALLOC_STATS_FILE=  (",      "vmalloc: VMALLOC_SEGMENT_CACHE=8  (",
      "vmalloc: VMALLOC_PURGE_DELAY_MS=100  (", "vmalloc: VMALLOC_PURGE_ESCALATE_MS=1000  (",
      "vmalloc: VMALLOC_PURGE_STRETCH=4  (",
      "vmalloc: VMALLOC_MMAP_THRESHOLD=1048576  (", "vmalloc: VMALLOC_BACKGROUND=0  (",
      "vmalloc: VMALLOC_THP=0  (",            "vmalloc: VMALLOC_CHECK=1  (",
      "vmalloc: VMALLOC_ON_ERROR=abort  (",
  };
  for (size_t i = 0; i < sizeof expected / sizeof expected[0]; i++)
    if (count_lines(err, expected[i]) != 1)
      fail_msg("no single line starting \"%s\" in:\n%s", expected[i], err);
  assert_int_equal(count_lines(err, "vmalloc: VMALLOC_"), sizeof expected / sizeof expected[0]);
  assert_int_equal(count_lines(err, ""), sizeof expected / sizeof expected[0]);
}

static void verbose_shows_values_from_the_environment(void **state) {
  (void)state;
  char err[8192];
  rerun((const char *[]){"VMALLOC_VERBOSE=yes", "VMALLOC_SEGMENT_CACHE=2", "VMALLOC_STATS=json",
                         "VMALLOC_STATS_FILE=/dev/null", NULL},
        err, sizeof err);
  assert_int_equal(count_lines(err, "vmalloc: VMALLOC_VERBOSE=1  ("), 1);
  assert_int_equal(count_lines(err, "vmalloc: VMALLOC_SEGMENT_CACHE=2  ("), 1);
  assert_int_equal(count_lines(err, "vmalloc: VMALLOC_STATS=json  ("), 1);
  assert_int_equal(count_lines(err, "vmalloc: VMALLOC_STATS_FILE=/dev/null  ("), 1);
  /* and silence without it */
  rerun((const char *[]){"VMALLOC_SEGMENT_CACHE=2", NULL}, err, sizeof err);
  assert_string_equal(err, "");
}

static void a_bad_value_warns_once_and_keeps_the_default(void **state) {
  (void)state;
  char err[4096];
  rerun((const char *[]){"VMALLOC_SEGMENT_CACHE=lots", NULL}, err, sizeof err);
  assert_string_equal(err, "vmalloc: ignoring VMALLOC_SEGMENT_CACHE=lots (expected 0..4096); "
                           "keeping 8\n");
  /* the default is what is in force */
  rerun((const char *[]){"VMALLOC_SEGMENT_CACHE=-1", "VMALLOC_VERBOSE=1", NULL}, err, sizeof err);
  assert_int_equal(count_lines(err, "vmalloc: ignoring VMALLOC_SEGMENT_CACHE=-1 "), 1);
  assert_int_equal(count_lines(err, "vmalloc: VMALLOC_SEGMENT_CACHE=8  ("), 1);
  rerun((const char *[]){"VMALLOC_STATS=sometimes", NULL}, err, sizeof err);
  assert_string_equal(err, "vmalloc: ignoring VMALLOC_STATS=sometimes (expected off|text|json "
                           "or 0..2); keeping off\n");
}

int main(int argc, char **argv) {
  if (argc > 1 && strcmp(argv[1], "child") == 0)
    return child();
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(verbose_prints_every_option),
      cmocka_unit_test(verbose_shows_values_from_the_environment),
      cmocka_unit_test(a_bad_value_warns_once_and_keeps_the_default),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
