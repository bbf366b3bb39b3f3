/* vmalloc_memory(): reserved >= committed >= resident, live bytes follow the heap, memory
 * freed leaves resident, all but a bounded lazy part at the first purge and the rest at
 * trim, and a bad argument is refused. */
#include <errno.h>
#include <malloc.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>

#include "../testutil.h"
#include "vmalloc.h"

#define BLOCKS 1024
#define BLOCK_SIZE (64 * KiB)

static vmalloc_memory_t measure(void) {
  vmalloc_memory_t m = {.size = sizeof m};
  assert_int_equal(vmalloc_memory(&m), 0);
  assert_true(m.reserved >= m.committed);
  assert_true(m.committed >= m.resident);
  return m;
}

static void figures_follow_the_heap(void **state) {
  (void)state;
  static void *blocks[BLOCKS];
  malloc_trim(0);
  vmalloc_memory_t before = measure();
  for (int i = 0; i < BLOCKS; i++) {
    blocks[i] = malloc(BLOCK_SIZE);
    fill_bytes(blocks[i], 1, BLOCK_SIZE);
  }
  vmalloc_memory_t during = measure();
  size_t total = (size_t)BLOCKS * BLOCK_SIZE;
  assert_true(during.live >= before.live + total);
  assert_true(during.resident >= before.resident + total);
  for (int i = 0; i < BLOCKS; i++)
    free(blocks[i]);
  /* past the purge delay (100 ms) but not the escalation (1 s): purged, lazily for at
   * most an eighth of the segments mapped (or 8 MiB), at once for the rest */
  struct timespec ts = {0, 300 * 1000 * 1000};
  nanosleep(&ts, NULL);
  void *volatile activity = malloc(300 * KiB); /* a slow path runs the purge clock */
  free(activity);
  vmalloc_memory_t freed = measure();
  assert_true(freed.live < during.live - total + total / 10);
  size_t lazy_bound = freed.reserved / 8 > 8 * MiB ? freed.reserved / 8 : 8 * MiB;
  assert_true(freed.lazy > 0);
  assert_true(freed.lazy <= lazy_bound);
  assert_true(freed.purged >= before.purged + total / 2);
  assert_true(freed.resident < during.resident - total + freed.lazy + total / 10);
  malloc_trim(0);
  vmalloc_memory_t trimmed = measure();
  assert_true(trimmed.resident < during.resident - total + total / 10);
  assert_int_equal(trimmed.lazy, 0);
}

static void a_bad_argument_is_refused(void **state) {
  (void)state;
  errno = 0;
  assert_int_equal(vmalloc_memory(NULL), -1);
  assert_int_equal(errno, EINVAL);
  vmalloc_memory_t m = {.size = 8};
  errno = 0;
  assert_int_equal(vmalloc_memory(&m), -1);
  assert_int_equal(errno, EINVAL);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(figures_follow_the_heap),
      cmocka_unit_test(a_bad_argument_is_refused),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
