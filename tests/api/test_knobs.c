/* The knobs that change where memory goes: mallopt(M_MMAP_THRESHOLD) and glibc's
 * MALLOC_MMAP_THRESHOLD_, VMALLOC_BACKGROUND, which lets an idle process shrink, and
 * VMALLOC_THP, which asks for transparent huge pages.
 * Environment variables are read once at start-up, so those cases re-run this program
 * with the variable set. */
#include <errno.h>
#include <malloc.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>

#include <cmocka.h>

#include "../testutil.h"

/* Whether a block of n bytes gets a mapping of its own (a "huge" block). */
static bool own_mapping(size_t n) {
  size_t before = mallinfo2().hblks;
  void *volatile p = malloc(n);
  bool own = mallinfo2().hblks == before + 1;
  free(p);
  return own;
}

static int child_env_threshold(void) {
  /* MALLOC_MMAP_THRESHOLD_=262144: 300 KiB blocks get their own mapping */
  return own_mapping(300 << 10) && !own_mapping(200 << 10) ? 0 : 1;
}

static int child_background(void) {
  enum { COUNT = 200000 };
  static void *blocks[COUNT];
  for (int i = 0; i < COUNT; i++) {
    blocks[i] = malloc(1000 + (size_t)(i % 7) * 100);
    fill_bytes(blocks[i], 3, 1000);
  }
  size_t peak = resident_bytes();
  for (int i = 0; i < COUNT; i++)
    free(blocks[i]);
  /* idle: no allocator call at all while the delays pass */
  struct timespec ts = {2, 500 * 1000 * 1000};
  nanosleep(&ts, NULL);
  size_t idle = resident_bytes();
  fprintf(stderr, "  background: peak %zu MiB, idle after 2.5 s %zu MiB\n", peak >> 20,
          idle >> 20);
  return idle < peak / 10 ? 0 : 1;
}

/* AnonHugePages of this process, in KiB, from /proc/self/smaps_rollup. */
static long anon_huge_kib(void) {
  FILE *f = fopen("/proc/self/smaps_rollup", "r");
  char line[256];
  long kib = -1;
  while (f != NULL && fgets(line, sizeof line, f) != NULL)
    if (sscanf(line, "AnonHugePages: %ld kB", &kib) == 1)
      break;
  if (f != NULL)
    fclose(f);
  return kib;
}

static int child_huge_pages(void) {
  enum { COUNT = 100000 };
  static void *blocks[COUNT];
  for (int i = 0; i < COUNT; i++) {
    blocks[i] = malloc(1000);
    fill_bytes(blocks[i], 5, 1000);
  }
  long kib = anon_huge_kib();
  fprintf(stderr, "  VMALLOC_THP=1: %ld KiB of transparent huge pages for 100 MB of blocks\n", kib);
  return kib >= 32 * 1024 ? 0 : 1; /* at least a third of it */
}

/* Runs this program again as `mode` with the assignment ("NAME=value") in its
 * environment; it must exit with 0. */
static void rerun_with(const char *assignment, const char *mode) {
  const char *args[] = {mode, NULL};
  const char *assignments[] = {assignment, NULL};
  int status = run_self(args, assignments, NULL, 0, NULL);
  assert_int_not_equal(status, -1);
  assert_true(WIFEXITED(status));
  assert_int_equal(WEXITSTATUS(status), 0);
}

static void mallopt_moves_the_mmap_threshold(void **state) {
  (void)state;
  assert_false(own_mapping(1 << 20));
  assert_int_equal(mallopt(M_MMAP_THRESHOLD, 512 << 10), 1);
  assert_true(own_mapping(1 << 20));
  assert_true(own_mapping(512 << 10));
  assert_false(own_mapping(256 << 10));
  assert_int_equal(mallopt(M_MMAP_THRESHOLD, 64 << 20), 1); /* beyond 2 MiB: clamped */
  assert_false(own_mapping(2 << 20));
  assert_true(own_mapping((2 << 20) + 1));
}

static void glibc_environment_threshold(void **state) {
  (void)state;
  rerun_with("MALLOC_MMAP_THRESHOLD_=262144", "env-threshold");
}

static void thp_option_gets_huge_pages(void **state) {
  (void)state;
  char mode[128] = "";
  FILE *f = fopen("/sys/kernel/mm/transparent_hugepage/enabled", "r");
  if (f != NULL) {
    if (fgets(mode, sizeof mode, f) == NULL)
      mode[0] = '\0';
    fclose(f);
  }
  if (strstr(mode, "[never]") != NULL || mode[0] == '\0')
    skip(); /* the kernel has transparent huge pages off */
  rerun_with("VMALLOC_THP=1", "huge-pages");
}

static void background_thread_shrinks_an_idle_process(void **state) {
  (void)state;
  rerun_with("VMALLOC_BACKGROUND=1", "background");
}

int main(int argc, char **argv) {
  if (argc > 1 && strcmp(argv[1], "env-threshold") == 0)
    return child_env_threshold();
  if (argc > 1 && strcmp(argv[1], "background") == 0)
    return child_background();
  if (argc > 1 && strcmp(argv[1], "huge-pages") == 0)
    return child_huge_pages();
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(mallopt_moves_the_mmap_threshold),
      cmocka_unit_test(glibc_environment_threshold),
      cmocka_unit_test(background_thread_shrinks_an_idle_process),
      cmocka_unit_test(thp_option_gets_huge_pages),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
