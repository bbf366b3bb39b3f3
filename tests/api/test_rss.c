/* Memory goes back: resident memory measured from /proc/self/statm (and LazyFree from
 * smaps_rollup) after freeing a large heap, with malloc_trim and without it (the purge
 * schedule), and calloc of purged memory reads as zero. Each case runs in a fresh child
 * so that one case's heap does not blur the next one's figures. */
#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <malloc.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "../testutil.h"
#include "vmalloc.h"

#define GiB ((size_t)1 << 30)

/* Fills about `total` bytes with blocks of sizes in [min, max], touching all of them. */
static void **fill(size_t total, size_t min, size_t max, size_t *count) {
  size_t capacity = total / min + 1;
  void **blocks = calloc(capacity, sizeof *blocks);
  uint64_t rng = random_seed(7);
  size_t got = 0, n = 0;
  while (got < total && n < capacity) {
    size_t size = min + random_below(&rng, max - min + 1);
    blocks[n] = malloc(size);
    if (blocks[n] == NULL)
      _exit(10);
    fill_bytes(blocks[n], 0x5a, size);
    got += size;
    n++;
  }
  *count = n;
  return blocks;
}

static void release(void **blocks, size_t count) {
  uint64_t rng = random_seed(11);
  for (size_t i = count; i > 1; i--) { /* free in random order */
    size_t j = random_below(&rng, i);
    void *t = blocks[i - 1];
    blocks[i - 1] = blocks[j];
    blocks[j] = t;
  }
  for (size_t i = 0; i < count; i++)
    free(blocks[i]);
}

static void sleep_ms(long ms) {
  struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
  nanosleep(&ts, NULL);
}

typedef struct {
  int (*fn)(size_t min, size_t max);
  size_t min, max;
} rss_case_t;

static int run_case(void *arg) {
  rss_case_t *c = arg;
  return c->fn(c->min, c->max);
}

static void run_in_child(int (*fn)(size_t, size_t), size_t min, size_t max) {
  rss_case_t c = {fn, min, max};
  int code = run_forked(run_case, &c);
  if (code != 0)
    fail_msg("child for %zu-%zu byte blocks failed with code %d", min, max, code);
}

/* After freeing 1 GiB and malloc_trim(0): resident at most 5% of the peak plus 8 MiB. */
static int trim_child(size_t min, size_t max) {
  size_t base = resident_bytes(), count;
  void **blocks = fill(GiB, min, max, &count);
  size_t peak = resident_bytes();
  release(blocks, count);
  free(blocks);
  int released = malloc_trim(0);
  size_t after = resident_bytes();
  fprintf(stderr, "  %zu-%zu B blocks: base %zu MiB, peak %zu MiB, after trim %zu MiB\n", min,
          max, base >> 20, peak >> 20, after >> 20);
  if (peak < base + GiB - GiB / 10)
    return 2; /* the heap did not become resident: the test measured nothing */
  if (released != 1)
    return 3;
  if (after > peak / 20 + ((size_t)8 << 20))
    return 4;
  return 0;
}

/* 256 MiB of big blocks, one in ten kept: nearly every page still holds a kept block, so
 * no page empties; malloc_trim(0) gives back the inner pages of the free blocks (all but
 * the page each starts in and a partial last one), at least half of the resident memory. */
static int trim_scattered_child(size_t min, size_t max) {
  size_t count;
  void **blocks = fill(GiB / 4, min, max, &count);
  size_t kept = 0;
  for (size_t i = 0; i < count; i++) {
    if (i % 10 == 0) {
      kept++;
      continue;
    }
    free(blocks[i]);
    blocks[i] = NULL;
  }
  size_t before = resident_bytes();
  malloc_trim(0);
  size_t after = resident_bytes();
  fprintf(stderr, "  %zu of %zu blocks of %zu-%zu B kept: %zu MiB before trim, %zu MiB after\n",
          kept, count, min, max, before >> 20, after >> 20);
  for (size_t i = 0; i < count; i += 10)
    for (size_t j = 0; j < min; j += 64)
      if (((unsigned char *)blocks[i])[j] != 0x5a)
        return 3;
  release(blocks, count); /* the NULLs too: free(NULL) */
  free(blocks);
  return after < before / 2 ? 0 : 4;
}

/* Without trim: after the purge delays and some allocator activity, under 10% of peak. */
static int schedule_child(size_t min, size_t max) {
  size_t count;
  void **blocks = fill(GiB, min, max, &count);
  size_t peak = resident_bytes();
  release(blocks, count);
  free(blocks);
  size_t freed = resident_bytes();
  /* the default delays: 100 ms to MADV_FREE, 1000 ms more to MADV_DONTNEED */
  for (int round = 0; round < 30; round++) {
    sleep_ms(100);
    for (int i = 0; i < 64; i++) { /* allocator activity that reaches the slow paths */
      void *volatile block = malloc(200000 + (size_t)i); /* volatile: not optimised away */
      free(block);
    }
  }
  size_t after = resident_bytes();
  fprintf(stderr, "  %zu-%zu B blocks: peak %zu MiB, just freed %zu MiB, after the delays %zu MiB\n",
          min, max, peak >> 20, freed >> 20, after >> 20);
  return after < peak / 10 ? 0 : 4;
}

/* Between the two delays (MADV_FREE after 100 ms, MADV_DONTNEED 1000 ms later), the
 * lazily freed part is held to an eighth of the segments mapped: it still counts in the
 * RSS, so past that the purge drops the rest at once. Without the bound, the whole
 * 256 MiB would stay resident until the second delay. */
static int lazy_bound_child(size_t min, size_t max) {
  size_t count;
  void **blocks = fill(GiB / 4, min, max, &count);
  size_t peak = resident_bytes();
  release(blocks, count);
  free(blocks);
  for (int round = 0; round < 4; round++) { /* 400 ms: past the first delay only */
    sleep_ms(100);
    void *volatile block = malloc(200000); /* a slow path: the purge schedule runs */
    free(block);
  }
  size_t after = resident_bytes();
  fprintf(stderr, "  %zu-%zu B blocks: peak %zu MiB, 400 ms after freeing %zu MiB\n", min, max,
          peak >> 20, after >> 20);
  return after < peak / 4 ? 0 : 4;
}

/* Bytes of [from, to) resident, by mincore. */
static size_t resident_in(const void *from, const void *to) {
  size_t os_page = (size_t)sysconf(_SC_PAGESIZE);
  uintptr_t start = ((uintptr_t)from + os_page - 1) & ~(os_page - 1);
  uintptr_t end = (uintptr_t)to & ~(os_page - 1);
  if (end <= start)
    return 0;
  size_t pages = (end - start) / os_page, resident = 0;
  unsigned char *vec = malloc(pages);
  if (vec == NULL || mincore((void *)start, end - start, vec) != 0)
    _exit(20);
  for (size_t i = 0; i < pages; i++)
    resident += (vec[i] & 1) * os_page;
  free(vec);
  return resident;
}

/* Memory inside a page that no block in use holds goes back, while the blocks in use
 * keep their bytes, for a page of 40 KiB blocks and for one of 256-byte blocks (which
 * share their OS pages):
 *   tail: the page is filled whole and emptied; it is its class's only page, so it
 *         stays, and starts again from its first block: the rest is its tail, which the
 *         purge schedule gives back once no carving has reached it for two of its looks
 *         (every 50 ms by default), and a trim at once;
 *   idle: all but the first block are freed, and stay free: the page does not empty.
 *         The free blocks past the last one in use join the tail again, on a trim at
 *         once, and on the schedule once the page has been left alone for two looks.
 * The blocks are allocated in a thread of their own, so the page is the first of its
 * class in that thread's heap. */
enum { MAX_PAGE_BLOCKS = 256 };
typedef struct {
  size_t block, spacing; /* requested size, and the class's block size */
  int blocks;            /* in one page */
} page_shape_t;
static const page_shape_t big_blocks = {40000, 40960, 14}, small_blocks = {250, 256, 256};

typedef struct {
  page_shape_t shape;
  bool idle, trim;
  int code;
} inside_case_t;

static void *inside_thread(void *arg) {
  inside_case_t *c = arg;
  size_t size = c->shape.block, spacing = c->shape.spacing;
  int count = c->shape.blocks;
  unsigned char *blocks[MAX_PAGE_BLOCKS];
  for (int i = 0; i < count; i++) {
    blocks[i] = malloc(size);
    if (blocks[i] == NULL)
      _exit(10);
    fill_bytes(blocks[i], 0x5a, size);
  }
  unsigned char *low = blocks[0], *high = blocks[0];
  for (int i = 1; i < count; i++) {
    low = blocks[i] < low ? blocks[i] : low;
    high = blocks[i] > high ? blocks[i] : high;
  }
  if ((size_t)(high - low) != (size_t)(count - 1) * spacing) {
    c->code = 2; /* not one page of consecutive blocks: the test would measure nothing */
    return NULL;
  }
  unsigned char *kept;
  if (c->idle) {
    kept = low;
    for (int i = 0; i < count; i++)
      if (blocks[i] != kept)
        free(blocks[i]);
  } else {
    for (int i = 0; i < count; i++)
      free(blocks[i]);
    kept = malloc(size); /* the page's first block again */
    fill_bytes(kept, 0x33, size);
  }
  /* the rest of the page, from the first OS page past the block in use */
  size_t os_page = (size_t)sysconf(_SC_PAGESIZE);
  unsigned char *rest = (unsigned char *)(((uintptr_t)low + size + os_page - 1) & ~(os_page - 1));
  size_t before = resident_in(rest, high + size);
  if (c->trim) {
    malloc_trim(0);
  } else {
    for (int round = 0; round < 6; round++) { /* past four looks, with slow paths */
      sleep_ms(100);
      void *volatile big = malloc(200000);
      free(big);
    }
  }
  size_t after = resident_in(rest, high + size);
  fprintf(stderr, "  %zu-byte blocks, %s, %s: block in use %s; the rest %zu KiB resident, "
          "then %zu KiB\n", spacing, c->idle ? "idle blocks" : "tail", c->trim ? "trim" : "schedule",
          kept == low ? "at the page start" : "elsewhere", before >> 10, after >> 10);
  for (size_t i = 0; i < size; i++)
    if (kept[i] != (c->idle ? 0x5a : 0x33))
      c->code = 3;
  free(kept);
  if (c->code == 0)
    c->code = kept != low ? 4 : before < (size_t)(high - rest) * 9 / 10 ? 5 : after > 0 ? 6 : 0;
  return NULL;
}

/* The other side: a page that fills and empties in a loop keeps what the loop reaches,
 * however long the loop runs, so it takes no page fault once warm. */
static void *cycling_thread(void *arg) {
  inside_case_t *c = arg;
  unsigned char *blocks[MAX_PAGE_BLOCKS];
  long faults_at_warm = 0, cycles = 0;
  struct timespec start, now;
  clock_gettime(CLOCK_MONOTONIC, &start);
  for (;;) {
    clock_gettime(CLOCK_MONOTONIC, &now);
    long ms = (now.tv_sec - start.tv_sec) * 1000 + (now.tv_nsec - start.tv_nsec) / 1000000;
    if (ms >= 600)
      break;
    struct rusage usage;
    getrusage(RUSAGE_THREAD, &usage);
    if (ms < 100)
      faults_at_warm = usage.ru_minflt;
    else
      cycles++;
    for (int i = 0; i < c->shape.blocks; i++) {
      blocks[i] = malloc(c->shape.block);
      if (blocks[i] == NULL)
        _exit(10);
      fill_bytes(blocks[i], 0x5a, c->shape.block);
    }
    for (int i = 0; i < c->shape.blocks; i++)
      free(blocks[i]);
    void *volatile big = malloc(200000); /* a slow path: the purge clock runs */
    free(big);
    sleep_ms(1);
  }
  struct rusage usage;
  getrusage(RUSAGE_THREAD, &usage);
  long faults = usage.ru_minflt - faults_at_warm;
  fprintf(stderr, "  %ld cycles after the first 100 ms, %ld page faults\n", cycles, faults);
  c->code = cycles < 50 ? 2 : faults >= cycles ? 3 : 0;
  return NULL;
}

static int cycling_child(void *arg) {
  pthread_t thread;
  if (pthread_create(&thread, NULL, cycling_thread, arg) != 0 || pthread_join(thread, NULL) != 0)
    return 9;
  return ((inside_case_t *)arg)->code;
}

static void page_filled_in_a_loop_keeps_its_memory(void **state) {
  (void)state;
  const page_shape_t shapes[] = {big_blocks, small_blocks};
  for (int i = 0; i < 2; i++) {
    inside_case_t c = {shapes[i], false, false, 0};
    int code = run_forked(cycling_child, &c);
    if (code != 0)
      fail_msg("child failed with code %d (%zu-byte blocks)", code, shapes[i].spacing);
  }
}

static int inside_child(void *arg) {
  pthread_t thread;
  if (pthread_create(&thread, NULL, inside_thread, arg) != 0 || pthread_join(thread, NULL) != 0)
    return 9;
  return ((inside_case_t *)arg)->code;
}

static void run_inside_case(page_shape_t shape, bool idle, bool trim) {
  inside_case_t c = {shape, idle, trim, 0};
  int code = run_forked(inside_child, &c);
  if (code != 0)
    fail_msg("child failed with code %d", code);
}
static void emptied_page_gives_back_its_tail_on_schedule(void **state) {
  (void)state;
  run_inside_case(big_blocks, false, false);
  run_inside_case(small_blocks, false, false);
}
static void emptied_page_gives_back_its_tail_on_trim(void **state) {
  (void)state;
  run_inside_case(big_blocks, false, true);
  run_inside_case(small_blocks, false, true);
}
static void idle_free_blocks_go_back_on_trim(void **state) {
  (void)state;
  run_inside_case(big_blocks, true, true);
  run_inside_case(small_blocks, true, true);
}
static void idle_free_blocks_go_back_on_schedule(void **state) {
  (void)state;
  run_inside_case(big_blocks, true, false);
  run_inside_case(small_blocks, true, false);
}

/* Memory given back and reused reads as zero through calloc, dirty before or not. */
static int calloc_child(size_t min, size_t max) {
  size_t count;
  void **blocks = fill(GiB / 4, min, max, &count);
  release(blocks, count);
  free(blocks);
  malloc_trim(0);
  for (size_t size = min; size <= max; size = size * 3 / 2 + 1) {
    unsigned char *p = calloc(1, size);
    if (p == NULL)
      return 2;
    for (size_t i = 0; i < size; i++)
      if (p[i] != 0)
        return 3;
    fill_bytes(p, 0x77, size);
    free(p);
    p = calloc(size, 1); /* the same block, now dirty */
    for (size_t i = 0; i < size; i++)
      if (p[i] != 0)
        return 4;
    free(p);
  }
  return 0;
}

/* A program that locks all its memory keeps working; purging it is refused, not fatal. */
static int mlock_child(size_t min, size_t max) {
  if (mlockall(MCL_CURRENT | MCL_FUTURE) != 0)
    return 0; /* not allowed here (RLIMIT_MEMLOCK): nothing to test */
  size_t count;
  void **blocks = fill((size_t)64 << 20, min, max, &count);
  release(blocks, count);
  free(blocks);
  malloc_trim(0);
  sleep_ms(300);
  blocks = fill((size_t)64 << 20, min, max, &count);
  for (size_t i = 0; i < count; i++)
    if (((unsigned char *)blocks[i])[0] != 0x5a)
      return 3;
  release(blocks, count);
  free(blocks);
  return malloc_trim(0) >= 0 ? 0 : 4;
}

static long minor_faults(void) {
  struct rusage usage;
  getrusage(RUSAGE_SELF, &usage);
  return usage.ru_minflt;
}

/* The purge delay in force, from the statistics. */
static size_t purge_delay_in_force(size_t *reused_bytes) {
  vmalloc_stats_t stats = {.size = sizeof stats};
  if (vmalloc_stats_get(&stats) != 0)
    _exit(20);
  if (reused_bytes != NULL)
    *reused_bytes = stats.purge_reused_bytes;
  return stats.purge_delay_ms;
}

/* A slow path every 50 ms for `ms` ms, so the purge clock runs. */
static void tick_for(long ms) {
  for (long waited = 0; waited < ms; waited += 50) {
    sleep_ms(50);
    void *volatile block = malloc(200000);
    free(block);
  }
}

/* `count` blocks of `size` bytes, each written in full. */
static void fill_blocks(void **blocks, size_t count, size_t size) {
  for (size_t i = 0; i < count; i++) {
    blocks[i] = malloc(size);
    if (blocks[i] == NULL)
      _exit(10);
    fill_bytes(blocks[i], 0x5a, size);
  }
}

/* A program that frees 24 MiB and fills it again every 150 ms: at the default 100 ms
 * delay the schedule drops most of it each time (past the bound on lazily freed memory),
 * and every cycle would fault it back in. (The refill must come soon after the drop,
 * within the delay, for the schedule to see it: 48 MiB took so long to refill
 * on a slow machine that half of it came back too late to count.) The delay in force doubles instead, the cycles
 * keep their memory, and once the cycles stop the delay comes back to the option's. */
static int stretch_child(size_t size, size_t count) {
  enum { CYCLES = 10, MAX_COUNT = 256 };
  void *blocks[MAX_COUNT];
  long faults[CYCLES];
  if (count > MAX_COUNT)
    return 2;
  for (int cycle = 0; cycle < CYCLES; cycle++) {
    long before = minor_faults();
    fill_blocks(blocks, count, size);
    faults[cycle] = minor_faults() - before;
    for (size_t i = 0; i < count; i++)
      free(blocks[i]);
    tick_for(150);
  }
  size_t reused, stretched = purge_delay_in_force(&reused);
  long late = 0;
  for (int cycle = CYCLES - 4; cycle < CYCLES; cycle++)
    late += faults[cycle];
  size_t relaxed = stretched;
  for (int waited = 0; waited < 200 && relaxed != 100; waited++) { /* up to 10 s */
    tick_for(50);
    relaxed = purge_delay_in_force(NULL);
  }
  fprintf(stderr, "  %zu blocks of %zu KiB every 150 ms: faults %ld, %ld, then %ld in the last "
          "4 cycles; %zu MiB reused soon after a purge; delay %zu ms, then %zu ms\n",
          count, size >> 10, faults[0], faults[1], late, reused >> 20, stretched, relaxed);
  if (faults[0] < (long)(count * size / 4096 / 2))
    return 3; /* the blocks were not faulted in: the test would measure nothing */
  if (stretched <= 100 || reused == 0)
    return 4;
  if (late * 8 > faults[0])
    return 5;
  return relaxed == 100 ? 0 : 6;
}

/* Threads that come and go, each a little slower than the purge delay, each taking the
 * heap the last one left: its free memory waits for the next thread rather than being
 * dropped as that thread starts, so the threads after the first take few page faults. */
typedef struct {
  size_t size, count;
  long faults;
} pool_round_t;

static void *pool_worker(void *arg) {
  pool_round_t *round = arg;
  void **blocks = malloc(round->count * sizeof *blocks);
  if (blocks == NULL)
    _exit(10);
  struct rusage usage;
  getrusage(RUSAGE_THREAD, &usage);
  long before = usage.ru_minflt;
  fill_blocks(blocks, round->count, round->size);
  getrusage(RUSAGE_THREAD, &usage);
  round->faults = usage.ru_minflt - before;
  for (size_t i = 0; i < round->count; i++)
    free(blocks[i]);
  free(blocks);
  return NULL;
}

static int thread_pool_child(size_t size, size_t count) {
  enum { ROUNDS = 6 };
  long faults[ROUNDS], late = 0;
  for (int i = 0; i < ROUNDS; i++) {
    pool_round_t round = {size, count, 0};
    pthread_t thread;
    if (pthread_create(&thread, NULL, pool_worker, &round) != 0 ||
        pthread_join(thread, NULL) != 0)
      return 9;
    faults[i] = round.faults;
    if (i >= 2)
      late += round.faults;
    sleep_ms(150);
  }
  fprintf(stderr, "  %zu blocks of %zu B a thread, a thread every 150 ms: faults %ld, then %ld "
          "in the last %d\n", count, size, faults[0], late, ROUNDS - 2);
  if (faults[0] < (long)(count * size / 4096 / 2))
    return 3;
  return late * 8 <= faults[0] ? 0 : 4;
}

/* Huge blocks freed and allocated again in a loop are reused, not mapped and faulted in
 * anew every time: the loop takes few more faults than its first round. `count` blocks
 * of `size` bytes a round; more of them than the cache's 32 MiB floor is the loop whose
 * peak the cache must follow. */
static int huge_loop_child(size_t size, size_t count) {
  enum { ROUNDS = 12, MAX_COUNT = 32 };
  size_t pages = count * (size / 4096);
  unsigned char *blocks[MAX_COUNT];
  if (count > MAX_COUNT)
    return 2;
  long before = minor_faults();
  for (int round = 0; round < ROUNDS; round++) {
    for (size_t i = 0; i < count; i++) {
      blocks[i] = malloc(size);
      if (blocks[i] == NULL)
        return 2;
      for (size_t offset = 0; offset < size; offset += 4096)
        blocks[i][offset] = (unsigned char)round;
    }
    for (size_t i = 0; i < count; i++)
      free(blocks[i]);
  }
  long faults = minor_faults() - before;
  fprintf(stderr, "  %d rounds of %zu blocks of %zu MiB: %ld page faults (%zu pages a round)\n",
          ROUNDS, count, size >> 20, faults, pages);
  return faults < (long)(2 * pages) ? 0 : 3;
}

/* A block of `small` bytes reuses the mapping of a freed, filled block of `big` (up to
 * four times the size, so it comes whole) but not its memory: what the program wrote
 * there is not the new block's and would stay resident for as long as it lives (sort
 * frees a 50 MiB buffer and allocates four of 12.5 MiB). The bytes past the block that
 * malloc_usable_size counts stay usable. */
static int reused_huge_mapping_child(size_t big, size_t small) {
  unsigned char *first = malloc(big);
  if (first == NULL)
    return 2;
  fill_bytes(first, 0x5a, big);
  free(first);
  size_t cached = resident_bytes();
  unsigned char *block = malloc(small);
  if (block == NULL)
    return 2;
  size_t taken = resident_bytes(), usable = malloc_usable_size(block);
  fill_bytes(block, 0x33, small);
  size_t filled = resident_bytes();
  fprintf(stderr, "  %zu MiB block in a %zu MiB mapping (usable %zu MiB): RSS %zu MiB freed, "
          "%zu MiB taken, %zu MiB filled\n", small >> 20, big >> 20, usable >> 20,
          cached >> 20, taken >> 20, filled >> 20);
  if (block != first || usable < big - 64 * KiB)
    return 3; /* not the mapping whole: the test would measure nothing */
  for (size_t offset = small; offset < usable; offset += 4 * KiB)
    block[offset] = 0x77;
  free(block);
  return taken + (big - small) / 2 < cached ? 0 : 5;
}

/* Huge blocks of varied sizes replaced one at a time and touched one byte per 64 KiB, as
 * a program with big sparse tables does, and a quarter of them from calloc. What a freed
 * mapping costs the cache is its resident pages, so it keeps far more of them than of
 * blocks written whole; and calloc of a reused one clears only its resident pages. Most
 * touches must find their page resident. */
static int sparse_huge_child(size_t min, size_t max) {
  enum { LIVE = 8, OPS = 400, STRIDE = 64 << 10 };
  unsigned char *blocks[LIVE] = {0};
  uint64_t rng = random_seed(5);
  long touches = 0, before = minor_faults();
  for (int op = 0; op < OPS + LIVE; op++) {
    int slot = op < OPS ? (int)random_below(&rng, LIVE) : op - OPS;
    free(blocks[slot]);
    blocks[slot] = NULL;
    if (op >= OPS)
      continue;
    size_t size = min + random_below(&rng, max - min);
    bool zeroed = op % 4 == 0;
    unsigned char *p = zeroed ? calloc(1, size) : malloc(size);
    if (p == NULL)
      return 2;
    for (size_t offset = 0; offset < size; offset += STRIDE, touches++) {
      if (zeroed && p[offset] != 0)
        return 3;
      p[offset] = (unsigned char)(op | 1);
    }
    blocks[slot] = p;
  }
  long faults = minor_faults() - before;
  fprintf(stderr, "  %d blocks of %zu-%zu MiB touched every 64 KiB: %ld page faults, %ld touches\n",
          OPS, min >> 20, max >> 20, faults, touches);
  return faults < touches / 4 ? 0 : 4;
}

static size_t pagemap_reads(void) {
  vmalloc_stats_t stats = {.size = sizeof stats};
  return vmalloc_stats_get(&stats) == 0 ? stats.pagemap_reads : SIZE_MAX;
}

/* One huge block from calloc, the first `filled` bytes of it written, freed, and again,
 * reusing the mapping. Asking the kernel which pages hold memory costs about as much as
 * writing them, so it is asked once about pages it said were the process's own: when the
 * program fills the block, the calloc of every later round asks nothing. The part never
 * written is asked about every round, and calloc writes none of it (no page faults). */
static int filled_calloc_child(size_t size, size_t filled) {
  enum { ROUNDS = 8 };
  size_t reads_first = 0, reads_later = 0;
  long faults_later = 0;
  for (int round = 0; round < ROUNDS; round++) {
    size_t reads = pagemap_reads();
    long faults = minor_faults();
    unsigned char *p = calloc(1, size);
    if (p == NULL)
      return 2;
    reads = pagemap_reads() - reads;
    faults = minor_faults() - faults;
    if (round == 1)
      reads_first = reads;
    if (round > 1) {
      reads_later += reads;
      faults_later += faults;
    }
    /* reading a page never written may give it memory: the last round reads them all */
    size_t checked = round == ROUNDS - 1 ? size : filled;
    for (size_t i = 0; i < checked; i += 512)
      if (p[i] != 0 || p[i + 511] != 0)
        return 3;
    fill_bytes(p, round + 1, filled);
    free(p);
  }
  fprintf(stderr, "  %zu of %zu MiB filled: %zu pagemap reads at the first reuse, %zu in %d "
          "more; %ld page faults\n", filled >> 20, size >> 20, reads_first, reads_later,
          (int)ROUNDS - 2, faults_later);
  if (reads_first == 0 || faults_later > 16)
    return 4;
  return (filled == size) == (reads_later == 0) ? 0 : 5;
}

/* ...and the ones kept for reuse go back once unused for the purge delay. */
static int huge_cache_expiry_child(size_t min, size_t max) {
  (void)max;
  void *blocks[8];
  for (int i = 0; i < 8; i++) {
    blocks[i] = malloc(min);
    if (blocks[i] == NULL)
      return 2;
    fill_bytes(blocks[i], 0x5a, min);
  }
  size_t peak = resident_bytes();
  for (int i = 0; i < 8; i++)
    free(blocks[i]);
  for (int round = 0; round < 10; round++) { /* past the 100 ms delay, with slow paths */
    sleep_ms(50);
    void *volatile block = malloc(200000);
    free(block);
  }
  size_t after = resident_bytes();
  fprintf(stderr, "  8 blocks of %zu MiB: peak %zu MiB, after the delay %zu MiB\n", min >> 20,
          peak >> 20, after >> 20);
  return peak - after >= 7 * min ? 0 : 3;
}

static void trim_small_blocks(void **state) { (void)state; run_in_child(trim_child, 16, 8192); }
static void trim_large_blocks(void **state) {
  (void)state;
  run_in_child(trim_child, 64 << 10, 1 << 20);
}
static void trim_scattered_big_blocks(void **state) {
  (void)state;
  run_in_child(trim_scattered_child, 10 << 10, 32 << 10);
}
static void schedule_small_blocks(void **state) {
  (void)state;
  run_in_child(schedule_child, 16, 8192);
}
static void schedule_large_blocks(void **state) {
  (void)state;
  run_in_child(schedule_child, 64 << 10, 1 << 20);
}
static void lazy_purge_is_bounded_small_blocks(void **state) {
  (void)state;
  run_in_child(lazy_bound_child, 16, 8192);
}
static void lazy_purge_is_bounded_large_blocks(void **state) {
  (void)state;
  run_in_child(lazy_bound_child, 64 << 10, 1 << 20);
}
static void calloc_after_purge(void **state) {
  (void)state;
  run_in_child(calloc_child, 16, 3 << 20);
}
static void huge_blocks_reused_in_a_loop(void **state) {
  (void)state;
  run_in_child(huge_loop_child, 8 << 20, 1);
}
static void many_huge_blocks_reused_in_a_loop(void **state) {
  (void)state;
  run_in_child(huge_loop_child, 3 << 20, 24); /* 72 MiB a round */
}
static void trim_huge_blocks(void **state) {
  (void)state;
  run_in_child(trim_child, 3 << 20, 16 << 20);
}
static void sparse_huge_blocks_reused(void **state) {
  (void)state;
  run_in_child(sparse_huge_child, 2 << 20, 48 << 20);
}
static void calloc_of_a_filled_huge_block_asks_once(void **state) {
  (void)state;
  run_in_child(filled_calloc_child, 8 << 20, 8 << 20);
}
static void calloc_of_a_half_filled_huge_block(void **state) {
  (void)state;
  run_in_child(filled_calloc_child, 8 << 20, 4 << 20);
}
static void reused_huge_mapping_keeps_no_memory_past_its_block(void **state) {
  (void)state;
  run_in_child(reused_huge_mapping_child, 48 << 20, 12 << 20);
}
static void huge_blocks_kept_for_reuse_go_back(void **state) {
  (void)state;
  run_in_child(huge_cache_expiry_child, 4 << 20, 0);
}
static void purge_delay_stretches_while_memory_is_reused_soon(void **state) {
  (void)state;
  run_in_child(stretch_child, 192 << 10, 128); /* 24 MiB of single-block pages */
}
static void threads_that_come_and_go_keep_their_heap_memory(void **state) {
  (void)state;
  run_in_child(thread_pool_child, 4000, 6144); /* 24 MiB of small blocks */
}
static void mlockall_keeps_working(void **state) {
  (void)state;
  run_in_child(mlock_child, 16, 1 << 20);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(trim_small_blocks),      cmocka_unit_test(trim_large_blocks),
      cmocka_unit_test(trim_scattered_big_blocks),
      cmocka_unit_test(emptied_page_gives_back_its_tail_on_schedule),
      cmocka_unit_test(emptied_page_gives_back_its_tail_on_trim),
      cmocka_unit_test(idle_free_blocks_go_back_on_trim),
      cmocka_unit_test(idle_free_blocks_go_back_on_schedule),
      cmocka_unit_test(page_filled_in_a_loop_keeps_its_memory),
      cmocka_unit_test(purge_delay_stretches_while_memory_is_reused_soon),
      cmocka_unit_test(threads_that_come_and_go_keep_their_heap_memory),
      cmocka_unit_test(schedule_small_blocks),  cmocka_unit_test(schedule_large_blocks),
      cmocka_unit_test(lazy_purge_is_bounded_small_blocks),
      cmocka_unit_test(lazy_purge_is_bounded_large_blocks),
      cmocka_unit_test(calloc_after_purge),     cmocka_unit_test(mlockall_keeps_working),
      cmocka_unit_test(huge_blocks_reused_in_a_loop),
      cmocka_unit_test(many_huge_blocks_reused_in_a_loop), cmocka_unit_test(trim_huge_blocks),
      cmocka_unit_test(sparse_huge_blocks_reused),
      cmocka_unit_test(calloc_of_a_filled_huge_block_asks_once),
      cmocka_unit_test(calloc_of_a_half_filled_huge_block),
      cmocka_unit_test(huge_blocks_kept_for_reuse_go_back),
      cmocka_unit_test(reused_huge_mapping_keeps_no_memory_past_its_block),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
