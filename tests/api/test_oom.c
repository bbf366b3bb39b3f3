/* Out of memory: under an address-space limit (RLIMIT_AS), allocation ends in NULL with
 * ENOMEM, never a crash, and the heap stays usable: after freeing everything the same
 * amount can be allocated again. Runs in a forked child so the limit stays there. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

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

/* In the child: fill, free, fill again, for small, large and huge blocks. */
static int child(size_t size) {
  static void *blocks[MAX_BLOCKS];
  size_t count;
  struct rlimit limit = {LIMIT, LIMIT};
  if (setrlimit(RLIMIT_AS, &limit) != 0)
    return 2;
  size_t first = fill(blocks, &count, size);
  if (count == MAX_BLOCKS || first < LIMIT / 4)
    return 4; /* the limit was never reached, or far too little was obtained */
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

static void run_in_child(size_t size) {
  pid_t pid = fork();
  assert_true(pid >= 0);
  if (pid == 0)
    _exit(child(size));
  int status;
  assert_int_equal(waitpid(pid, &status, 0), pid);
  if (!WIFEXITED(status))
    fail_msg("child for %zu-byte blocks died with signal %d", size, WTERMSIG(status));
  if (WEXITSTATUS(status) != 0)
    fail_msg("child for %zu-byte blocks failed with code %d", size, WEXITSTATUS(status));
}

static void small_blocks_until_enomem(void **state) { (void)state; run_in_child(4096); }
static void medium_blocks_until_enomem(void **state) { (void)state; run_in_child(100000); }
static void large_blocks_until_enomem(void **state) { (void)state; run_in_child(1 << 20); }
static void huge_blocks_until_enomem(void **state) { (void)state; run_in_child(24 << 20); }

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(small_blocks_until_enomem),
      cmocka_unit_test(medium_blocks_until_enomem),
      cmocka_unit_test(large_blocks_until_enomem),
      cmocka_unit_test(huge_blocks_until_enomem),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
