/* Out of memory: under an address-space limit (RLIMIT_AS), allocation ends in NULL with
 * ENOMEM, never a crash, and the heap stays usable: after freeing everything the same
 * amount can be allocated again. Runs in a forked child so the limit stays there. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "../testutil.h"

#define LIMIT ((size_t)512 << 20)
#define MAX_BLOCKS (1 << 20)

/* Allocates blocks of `size` (writing each) until malloc fails; returns the bytes got. */
static size_t fill(void **blocks, size_t *count, size_t size) {
  size_t got = 0;
  *count = 0;
  while (*count < MAX_BLOCKS) {
    errno = 0;
    void *p = malloc(size);
    if (p == NULL) {
      if (errno != ENOMEM)
        _exit(3);
      break;
    }
    memset(p, 0x33, size < 4096 ? size : 4096);
    blocks[(*count)++] = p;
    got += size;
  }
  return got;
}

static void release(void **blocks, size_t count) {
  for (size_t i = 0; i < count; i++)
    free(blocks[i]);
}

/* In the child: fill, free, fill again, for small, large and huge blocks. Of the address
 * space left under the limit, at least `percent` must come back as payload. */
static int child(size_t size, unsigned percent) {
  static void *blocks[MAX_BLOCKS];
  size_t count;
  struct rlimit limit = {LIMIT, LIMIT};
  if (setrlimit(RLIMIT_AS, &limit) != 0)
    return 2;
  size_t left = LIMIT - mapped_bytes();
  size_t first = fill(blocks, &count, size);
  fprintf(stderr, "  %zu-byte blocks: %zu of %zu MiB left under the limit (%zu%%)\n", size,
          first >> 20, left >> 20, first * 100 / left);
  if (count == MAX_BLOCKS || first * 100 < left * percent)
    return 4; /* the limit was never reached, or too little was obtained */
  /* with the heap full, calloc and realloc fail cleanly too */
  errno = 0;
  if (calloc(1, 64 << 20) != NULL || errno != ENOMEM)
    return 5;
  release(blocks, count);
  size_t second = fill(blocks, &count, size);
  if (second < first - first / 10)
    return 6; /* memory freed must be obtainable again */
  release(blocks, count);
  void *p = malloc(100);
  if (p == NULL)
    return 7;
  free(p);
  return 0;
}

typedef struct {
  size_t size;
  unsigned percent;
} oom_case_t;

static int run_case(void *arg) {
  oom_case_t *c = arg;
  return child(c->size, c->percent);
}

static void run_in_child(size_t size, unsigned percent) {
  oom_case_t c = {size, percent};
  int code = run_forked(run_case, &c);
  if (code != 0)
    fail_msg("child for %zu-byte blocks failed with code %d", size, code);
}

/* 4 KiB blocks must use 90% of what is left. The others lose more to rounding: a 100000
 * byte block takes a 112 KiB class (89%); 1 MiB blocks, 16 slices each, fit 3 to a
 * segment of 63 free slices (76%); a 24 MiB one its own mapping plus a header page. */
static void small_blocks_until_enomem(void **state) { (void)state; run_in_child(4096, 90); }
static void medium_blocks_until_enomem(void **state) { (void)state; run_in_child(100000, 80); }
static void large_blocks_until_enomem(void **state) { (void)state; run_in_child(1 << 20, 70); }
static void huge_blocks_until_enomem(void **state) { (void)state; run_in_child(24 << 20, 80); }

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(small_blocks_until_enomem),
      cmocka_unit_test(medium_blocks_until_enomem),
      cmocka_unit_test(large_blocks_until_enomem),
      cmocka_unit_test(huge_blocks_until_enomem),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
