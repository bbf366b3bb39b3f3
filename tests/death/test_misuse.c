/* Heap misuse ends in one clear line and SIGABRT, in a forked child each; with
 * VMALLOC_ON_ERROR=warn the same line is printed and the program goes on. The expected
 * text is the start of the message, after "vmalloc: ". The last cases need a heavier
 * checking tier (VMALLOC_CHECK=2 or 3). */
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <malloc.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "../testutil.h"

typedef void (*misuse_fn)(void);

static void *volatile sink;

static void double_free_small(void) {
  void *p = malloc(64);
  free(p);
  free(p);
}
static void double_free_after_other_frees(void) {
  void *blocks[8];
  for (int i = 0; i < 8; i++)
    blocks[i] = malloc(100);
  free(blocks[3]);
  free(blocks[5]);
  free(blocks[3]);
}
/* Every block of a class's only page back (20 of the 28 that a page of 2304-byte blocks
 * holds): the page starts again with no block carved, and a block freed again is still
 * a double free. */
static void double_free_after_the_page_emptied(void) {
  void *blocks[20];
  for (int i = 0; i < 20; i++)
    blocks[i] = malloc(2300);
  for (int i = 0; i < 20; i++)
    free(blocks[i]);
  free(blocks[5]);
}
/* All but the first of a page's blocks freed (23 of 2816 bytes fill one), then a trim:
 * the page's free end is uncarved and its memory, freed marks included, goes back to the
 * kernel. A block of it freed again is no longer known as freed, but neither is it one
 * the page has handed out. */
static void double_free_after_a_trim_gave_the_block_back(void) {
  void *blocks[23];
  for (int i = 0; i < 23; i++)
    blocks[i] = malloc(2800);
  for (int i = 1; i < 23; i++)
    free(blocks[i]);
  malloc_trim(0);
  free(blocks[20]);
}
static void double_free_medium(void) {
  void *keep = malloc(20000), *p = malloc(20000);
  sink = keep;
  free(p);
  free(p);
}
static void *free_in_thread(void *p) {
  free(p);
  return NULL;
}
static void double_free_across_threads(void) {
  void *keep = malloc(48), *p = malloc(48);
  sink = keep;
  pthread_t t;
  pthread_create(&t, NULL, free_in_thread, p);
  pthread_join(t, NULL);
  free(p);
}
static void free_of_foreign_pointer(void) {
  static char not_heap[64];
  free(not_heap + 16);
}
static void free_of_stack_pointer(void) {
  char local[32];
  sink = local;
  free(local);
}
static void free_inside_small_block(void) {
  char *p = malloc(64);
  free(p + 16); /* the calling thread's own current page: the free fast path's case */
}
/* A page of 48-byte blocks holds 1365 of them in its 64 KiB and 16 bytes of slack: a
 * pointer there lies a multiple of 48 from the page's start, but starts no block. */
static void free_in_the_slack_after_the_last_block(void) {
  char *p = malloc(48);
  sink = p;
  uintptr_t area = (uintptr_t)p & ~(uintptr_t)0xffff;
  free((void *)(area + 65536 / 48 * 48));
}
/* A page carves its blocks a few KiB at a time, so its last block is not handed out yet:
 * freed, it would be handed out twice. */
static char *last_block_not_yet_carved(void) {
  char *p = malloc(2080);
  sink = p;
  uintptr_t area = (uintptr_t)p & ~(uintptr_t)0xffff;
  return (char *)(area + (65536 / 2080 - 1) * 2080);
}
static void free_of_a_block_not_yet_handed_out(void) { free(last_block_not_yet_carved()); }
static void realloc_of_a_block_not_yet_handed_out(void) {
  sink = realloc(last_block_not_yet_carved(), 100);
}
static void usable_size_of_a_block_not_yet_handed_out(void) {
  sink = (void *)malloc_usable_size(last_block_not_yet_carved());
}
static void free_inside_medium_block_past_its_first_slice(void) {
  char *blocks[6];
  for (int i = 0; i < 6; i++)
    blocks[i] = malloc(20000);
  sink = blocks[0];
  free(blocks[5] + 24); /* 100 KiB into a page of several 64 KiB slices */
}
static void free_inside_block_of_another_thread(void) {
  char *p = malloc(128);
  pthread_t t;
  pthread_create(&t, NULL, free_in_thread, p + 64);
  pthread_join(t, NULL);
}
static void free_inside_large_block(void) {
  char *p = malloc(300 << 10);
  free(p + 4096);
}
static void free_inside_huge_block(void) {
  char *p = malloc(8 << 20);
  free(p + 4096);
}
static void realloc_of_freed_block(void) {
  void *keep = malloc(32), *p = malloc(32);
  sink = keep;
  free(p);
  sink = realloc(p, 64);
}
static void realloc_inside_block(void) {
  char *p = malloc(256);
  sink = realloc(p + 32, 512);
}
static void usable_size_inside_block(void) {
  char *p = malloc(96);
  sink = (void *)malloc_usable_size(p + 16);
}
static void usable_size_of_foreign_pointer(void) {
  static char not_heap[64];
  sink = (void *)malloc_usable_size(not_heap);
}
static void write_after_free_corrupts_list(void) {
  void *keep = malloc(80);
  sink = keep;
  uintptr_t *a = malloc(80), *b = malloc(80);
  free(b);
  free(a); /* a's first word now links to b, encoded */
  a[0] = (uintptr_t)0x4141414141414141; /* a write after free */
  sink = malloc(80); /* takes a */
  sink = malloc(80); /* follows the corrupted link */
}

/* Caught only by the heavier tiers (VMALLOC_CHECK=2 and 3). */
static void overflow_by_one_byte(void) {
  char *p = malloc(40);
  p[40] ^= 1; /* a flipped bit: a byte written as 'x' matched the random canary 1 time in 256 */
  free(p);
}
static void overflow_of_segment_aligned_huge_block(void) {
  size_t n = 5 << 20;
  char *p = aligned_alloc(8 << 20, n); /* its header sits a whole segment below it */
  p[n] ^= 1; /* as above */
  free(p);
}
static void write_after_free_in_block_body(void) {
  char *keep = malloc(200);
  sink = keep;
  char *p = malloc(200);
  free(p);
  p[100] = 'x'; /* not the link words: only the junk check sees it */
  sink = malloc(200);
}
static void double_free_while_in_quarantine(void) {
  void *p = malloc(72);
  free(p);
  for (int i = 0; i < 10; i++) /* other frees: p stays in quarantine, off every list */
    free(malloc(72));
  free(p);
}

/* VMALLOC_CHECK=3: a run past the end of a large or huge block meets a guard page. The
 * fault must come from that page, not from whatever lies further on: the handler lets
 * SIGSEGV kill the child only then, and exits with status 3 otherwise. */
static char *volatile guard_start;
static void on_overrun_fault(int sig, siginfo_t *info, void *context) {
  (void)context;
  char *at = info->si_addr;
  if (at < guard_start || at >= guard_start + 4096)
    _exit(3);
  signal(sig, SIG_DFL); /* the faulting write runs again, and kills */
}
static void overrun_until_fault(volatile char *p, size_t n, size_t step) {
  struct sigaction action = {.sa_sigaction = on_overrun_fault, .sa_flags = SA_SIGINFO};
  sigaction(SIGSEGV, &action, NULL);
  for (size_t i = n;; i += step) /* past the canary, on to the guard */
    p[i] = 'x';
}
static void overrun_of_large_block(void) {
  size_t n = 300 << 10; /* 5 slices of 64 KiB: the block, then the guard at their end */
  char *p = malloc(n);
  guard_start = p + (5 << 16) - 4096;
  overrun_until_fault(p, n, 4096);
}
static void overrun_of_huge_block(void) {
  size_t n = (8 << 20) + 100; /* the guard follows the block's last OS page */
  char *p = malloc(n);
  guard_start = p + ((n + 4095) & ~(size_t)4095);
  overrun_until_fault(p, n, 512);
}

typedef struct {
  const char *name;
  misuse_fn fn;
  const char *message;
  const char *check_level; /* VMALLOC_CHECK for this case; NULL: the default */
} misuse_t;

static const misuse_t misuses[] = {
    {"double free", double_free_small, "double free of 0x", NULL},
    {"double free among others", double_free_after_other_frees, "double free of 0x", NULL},
    {"double free of a medium block", double_free_medium, "double free of 0x", NULL},
    {"double free after the page emptied", double_free_after_the_page_emptied,
     "double free of 0x", NULL},
    {"double free across threads", double_free_across_threads, "double free of 0x", NULL},
    {"double free after a trim gave the block back", double_free_after_a_trim_gave_the_block_back,
     "invalid pointer 0x", NULL},
    {"free of a static array", free_of_foreign_pointer, "invalid pointer 0x", NULL},
    {"free of a stack array", free_of_stack_pointer, "invalid pointer 0x", NULL},
    {"free inside a small block", free_inside_small_block, "invalid pointer 0x", NULL},
    {"free in a page's slack", free_in_the_slack_after_the_last_block, "invalid pointer 0x",
     NULL},
    {"free of a block not yet handed out", free_of_a_block_not_yet_handed_out,
     "invalid pointer 0x", NULL},
    {"realloc of a block not yet handed out", realloc_of_a_block_not_yet_handed_out,
     "invalid pointer 0x", NULL},
    {"malloc_usable_size of a block not yet handed out",
     usable_size_of_a_block_not_yet_handed_out, "invalid pointer 0x", NULL},
    {"free inside a medium block", free_inside_medium_block_past_its_first_slice,
     "invalid pointer 0x", NULL},
    {"free inside another thread's block", free_inside_block_of_another_thread,
     "invalid pointer 0x", NULL},
    {"free inside a large block", free_inside_large_block, "invalid pointer 0x", NULL},
    {"free inside a huge block", free_inside_huge_block, "invalid pointer 0x", NULL},
    {"realloc of a freed block", realloc_of_freed_block, "use after free of 0x", NULL},
    {"malloc_usable_size of a foreign pointer", usable_size_of_foreign_pointer,
     "invalid pointer 0x", NULL},
    {"write after free", write_after_free_corrupts_list, "corrupted free list at 0x", NULL},
    {"realloc inside a block", realloc_inside_block, "invalid pointer 0x", NULL},
    {"malloc_usable_size inside a block", usable_size_inside_block, "invalid pointer 0x", NULL},
    {"overflow by one byte", overflow_by_one_byte, "heap overflow past the end of 0x", "2"},
    {"overflow of a segment-aligned huge block", overflow_of_segment_aligned_huge_block,
     "heap overflow past the end of 0x", "2"},
    {"write after free in a block's body", write_after_free_in_block_body,
     "write after free at 0x", "2"},
    {"double free while in quarantine", double_free_while_in_quarantine, "double free of 0x",
     "3"},
};

static const misuse_t guard_overruns[] = {
    {"overrun of a large block", overrun_of_large_block, NULL, "3"},
    {"overrun of a huge block", overrun_of_huge_block, NULL, "3"},
};

/* The body of a forked child that stays this process: the misuse, then a clean exit. */
static int misuse_in_child(void *m) {
  ((const misuse_t *)m)->fn();
  return 0;
}

/* Runs misuse in a child with stderr captured; returns the signal or 0, fills out. */
static int run_misuse(const misuse_t *m, bool warn, char *out, size_t size) {
  int status;
  if (warn || m->check_level != NULL) { /* options are read at start-up: run anew */
    char check[32];
    const char *env[3], **e = env;
    if (warn)
      *e++ = "VMALLOC_ON_ERROR=warn";
    if (m->check_level != NULL) {
      snprintf(check, sizeof check, "VMALLOC_CHECK=%s", m->check_level);
      *e++ = check;
    }
    *e = NULL;
    status = run_self((const char *[]){"child", m->name, NULL}, env, out, size, NULL);
  } else {
    status = run_captured(misuse_in_child, (void *)m, out, size, NULL);
  }
  assert_int_not_equal(status, -1);
  if (WIFSIGNALED(status))
    return WTERMSIG(status);
  return WEXITSTATUS(status) == 0 ? 0 : -WEXITSTATUS(status);
}

static void each_misuse_aborts_with_one_line(void **state) {
  (void)state;
  for (size_t i = 0; i < sizeof misuses / sizeof misuses[0]; i++) {
    char out[1024], expected[128];
    int sig = run_misuse(&misuses[i], false, out, sizeof out);
    snprintf(expected, sizeof expected, "vmalloc: %s", misuses[i].message);
    if (sig != SIGABRT || strncmp(out, expected, strlen(expected)) != 0 ||
        strchr(out, '\n') != out + strlen(out) - 1)
      fail_msg("%s: signal %d, stderr \"%s\", expected SIGABRT and one line \"%s...\"",
               misuses[i].name, sig, out, expected);
  }
}

static void with_warn_each_misuse_is_reported_and_survived(void **state) {
  (void)state;
  for (size_t i = 0; i < sizeof misuses / sizeof misuses[0]; i++) {
    char out[1024], expected[128];
    int result = run_misuse(&misuses[i], true, out, sizeof out);
    snprintf(expected, sizeof expected, "vmalloc: %s", misuses[i].message);
    if (result != 0 || strncmp(out, expected, strlen(expected)) != 0)
      fail_msg("%s with warn: result %d, stderr \"%s\", expected survival and \"%s...\"",
               misuses[i].name, result, out, expected);
  }
}

static void at_tier_3_overruns_fault_on_a_guard_page(void **state) {
  (void)state;
  for (size_t i = 0; i < sizeof guard_overruns / sizeof guard_overruns[0]; i++) {
    char out[1024];
    int sig = run_misuse(&guard_overruns[i], false, out, sizeof out);
    if (sig != SIGSEGV)
      fail_msg("%s: signal %d, stderr \"%s\", expected SIGSEGV", guard_overruns[i].name, sig,
               out);
  }
}

static const misuse_t *misuse_named(const char *name) {
  for (size_t i = 0; i < sizeof misuses / sizeof misuses[0]; i++)
    if (strcmp(name, misuses[i].name) == 0)
      return &misuses[i];
  for (size_t i = 0; i < sizeof guard_overruns / sizeof guard_overruns[0]; i++)
    if (strcmp(name, guard_overruns[i].name) == 0)
      return &guard_overruns[i];
  return NULL;
}

int main(int argc, char **argv) {
  if (argc == 3 && strcmp(argv[1], "child") == 0) {
    const misuse_t *m = misuse_named(argv[2]);
    if (m != NULL) {
      m->fn();
      /* the heap must still work after the report */
      void *p = malloc(100);
      free(p);
      return 0;
    }
    return 2;
  }
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(each_misuse_aborts_with_one_line),
      cmocka_unit_test(with_warn_each_misuse_is_reported_and_survived),
      cmocka_unit_test(at_tier_3_overruns_fault_on_a_guard_page),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
