/* Threads against the internals: cross-thread frees into full and current pages, heaps of
 * exited threads parked for the next thread, or abandoned and adopted once released, and a
 * mixed stress that also runs under TSan. */
#include "unit.h"

#include <pthread.h>
#include <sched.h>
#include <stdlib.h>
#include <string.h>

enum { BLOCKS = 20000 };

static void *allocate_and_exit(void *arg) {
  void **blocks = arg;
  for (int i = 0; i < BLOCKS; i++) {
    blocks[i] = vm_malloc(32 + (size_t)(i % 7) * 100);
    memset(blocks[i], 0x5a, 32);
  }
  return NULL;
}

/* Joins an exiting thread and releases its parked heap at once, as the purge clock does
 * when no thread takes it within the purge delay: its segments are then abandoned. */
static void join_released(pthread_t t) {
  pthread_join(t, NULL);
  vm_heap_release_parked(vm_os_now_ms(), true);
}

static void *free_all(void *arg) {
  void **blocks = arg;
  for (int i = 0; i < BLOCKS; i++)
    vm_free(blocks[i]);
  return NULL;
}

static void blocks_freed_by_another_thread_come_back(void **state) {
  (void)state;
  static void *blocks[BLOCKS];
  vm_census_t before, after;
  vm_segment_census(&before, false);
  for (int round = 0; round < 5; round++) {
    for (int i = 0; i < BLOCKS; i++)
      blocks[i] = vm_malloc(48);
    pthread_t t;
    pthread_create(&t, NULL, free_all, blocks);
    pthread_join(t, NULL);
  }
  /* the remote frees are collected when this heap needs pages again */
  for (int i = 0; i < BLOCKS; i++)
    blocks[i] = vm_malloc(48);
  for (int i = 0; i < BLOCKS; i++)
    vm_free(blocks[i]);
  vm_segment_census(&after, false);
  assert_true(after.class_pages[vm_class_of(48)] <= before.class_pages[vm_class_of(48)] + 1);
  assert_true(vm_heap_is_valid(vm_heap_tls));
}

static void *allocate_one(void *arg) {
  void **slot = arg;
  *slot = vm_malloc(32);
  return NULL;
}

/* An exited thread's segments wait abandoned while others free into them; a trim gives
 * back only pages whose blocks are all back, and keeps the rest abandoned rather than
 * moving them into the trimming heap. A new thread, with no room of its own, adopts one
 * and takes its first block from the freed ones. */
static void heaps_of_exited_threads_are_adopted(void **state) {
  (void)state;
  static void *blocks[BLOCKS];
  vm_census_t start, census;
  vm_segment_census(&start, false);
  pthread_t t;
  pthread_create(&t, NULL, allocate_and_exit, blocks);
  join_released(t);
  vm_segment_census(&census, false);
  size_t exited = census.abandoned_segments;
  assert_true(exited > start.abandoned_segments);
  for (int i = 0; i < BLOCKS; i += 2) /* every page keeps live blocks */
    vm_free(blocks[i]);
  vm_purge_collect(false);
  vm_segment_census(&census, false);
  assert_int_equal(census.abandoned_segments, exited);
  void *adopted;
  pthread_create(&t, NULL, allocate_one, &adopted);
  join_released(t);
  bool in_exited_segment = false;
  for (int i = 1; i < BLOCKS; i += 2)
    in_exited_segment |= vm_segment_of(blocks[i]) == vm_segment_of(adopted);
  assert_true(in_exited_segment);
  vm_segment_census(&census, false);
  assert_int_equal(census.abandoned_segments, exited); /* abandoned again once released */
  for (int i = 1; i < BLOCKS; i += 2) {
    assert_int_equal(*(unsigned char *)blocks[i], 0x5a);
    vm_free(blocks[i]);
  }
  vm_free(adopted);
  vm_segment_census(&census, false);
  assert_int_equal(census.abandoned_segments, start.abandoned_segments);
  assert_true(vm_heap_is_valid(vm_heap_tls));
}

/* A segment an exited thread left with every block in use has nothing for a heap that
 * needs room: such a heap passes it by. Once another thread frees a block into it, the
 * next heap that needs room adopts it and gets that block. */
enum { FILL_BLOCK = 128 << 10, FILL_BLOCKS = 28 }; /* 4 a page, 7 pages a segment */
static void *fill_segment_and_exit(void *arg) {
  void **blocks = arg;
  for (int i = 0; i < FILL_BLOCKS; i++) {
    blocks[i] = vm_malloc(FILL_BLOCK);
    memset(blocks[i], 0x6b, 64);
  }
  return NULL;
}

static void *allocate_fill_block(void *arg) {
  void **slot = arg;
  *slot = vm_malloc(FILL_BLOCK);
  return NULL;
}

static void full_abandoned_segments_wait_for_a_free(void **state) {
  (void)state;
  vm_census_t census;
  vm_segment_census(&census, false);
  assert_int_equal(census.abandoned_segments, 0); /* else the filler could adopt one */
  static void *blocks[FILL_BLOCKS];
  pthread_t t;
  pthread_create(&t, NULL, fill_segment_and_exit, blocks);
  join_released(t);
  vm_segment_t *full = vm_segment_of(blocks[0]);
  for (int i = 0; i < FILL_BLOCKS; i++)
    assert_ptr_equal(vm_segment_of(blocks[i]), full);
  assert_int_equal(full->free_slices, 0);
  vm_segment_census(&census, false);
  assert_int_equal(census.abandoned_full_segments, 1);
  void *passer_by;
  pthread_create(&t, NULL, allocate_fill_block, &passer_by);
  join_released(t);
  assert_ptr_not_equal(vm_segment_of(passer_by), full);
  vm_free(blocks[5]); /* its page keeps three blocks */
  vm_segment_census(&census, false);
  assert_int_equal(census.abandoned_full_segments, 0);
  assert_int_equal(census.abandoned_segments, 2); /* the passer-by's has room */
  void *adopter;
  pthread_create(&t, NULL, allocate_fill_block, &adopter);
  join_released(t);
  assert_ptr_equal(adopter, blocks[5]);
  blocks[5] = adopter;
  for (int i = 0; i < FILL_BLOCKS; i++) {
    if (i != 5)
      assert_int_equal(*(unsigned char *)blocks[i], 0x6b);
    vm_free(blocks[i]);
  }
  vm_free(passer_by);
  vm_segment_census(&census, false);
  assert_int_equal(census.abandoned_segments, 0);
  assert_true(vm_heap_is_valid(vm_heap_tls));
}

/* Blocks of an exited thread freed by another thread: each page goes back to its segment
 * with its last block, and the empty segment to the cache, with no heap adopting it. */
static void pages_of_exited_threads_go_back_when_emptied(void **state) {
  (void)state;
  static void *blocks[BLOCKS];
  vm_census_t start, kept_one, emptied;
  vm_segment_census(&start, false);
  pthread_t t;
  pthread_create(&t, NULL, allocate_and_exit, blocks);
  join_released(t);
  vm_census_t exited;
  vm_segment_census(&exited, false);
  assert_true(exited.abandoned_segments > start.abandoned_segments);
  for (int i = 1; i < BLOCKS; i++) /* this thread only frees: it never adopts */
    vm_free(blocks[i]);
  vm_segment_census(&kept_one, false);
  /* blocks[0] keeps its page, and its segment abandoned; the other pages left */
  assert_int_equal(kept_one.abandoned_segments, start.abandoned_segments + 1);
  unsigned kept_class = vm_class_of(32);
  assert_int_equal(kept_one.class_pages[kept_class], start.class_pages[kept_class] + 1);
  unsigned other_class = vm_class_of(32 + 100);
  assert_true(exited.class_pages[other_class] > start.class_pages[other_class]);
  assert_int_equal(kept_one.class_pages[other_class], start.class_pages[other_class]);
  assert_int_equal(*(unsigned char *)blocks[0], 0x5a);
  vm_free(blocks[0]);
  vm_segment_census(&emptied, false);
  assert_int_equal(emptied.abandoned_segments, start.abandoned_segments);
  assert_int_equal(emptied.class_pages[kept_class], start.class_pages[kept_class]);
  assert_true(emptied.cached_segments > kept_one.cached_segments); /* the last one left */
  assert_true(vm_heap_is_valid(vm_heap_tls));
}

/* The same, racing: two threads free an exited thread's blocks while a third allocates
 * enough to adopt segments, so pages empty while being held, adopted or abandoned again.
 * Every block is checked before it is freed (and TSan watches the whole dance). */
enum { RACE_BLOCKS = 6000, RACE_ROUNDS = 12 };
static void *race_blocks[RACE_BLOCKS];

static void *fill_race_blocks(void *arg) {
  uint64_t rng = (uintptr_t)arg;
  for (int i = 0; i < RACE_BLOCKS; i++) {
    size_t n = 16 + unit_rand(&rng) % 3000;
    race_blocks[i] = vm_malloc(n);
    memset(race_blocks[i], (uint8_t)i, 16);
  }
  return NULL;
}

static void *free_race_half(void *arg) {
  for (int i = (int)(uintptr_t)arg; i < RACE_BLOCKS; i += 2) {
    uint8_t *p = race_blocks[i];
    if (p[0] != (uint8_t)i || p[15] != (uint8_t)i)
      abort();
    vm_free(p);
  }
  return NULL;
}

static void *allocate_meanwhile(void *arg) {
  uint64_t rng = (uintptr_t)arg;
  void *mine[2000];
  for (int i = 0; i < 2000; i++)
    mine[i] = vm_malloc(16 + unit_rand(&rng) % 3000);
  for (int i = 0; i < 2000; i++)
    vm_free(mine[i]);
  return NULL;
}

static void exited_threads_blocks_freed_while_others_adopt(void **state) {
  (void)state;
  for (int round = 0; round < RACE_ROUNDS; round++) {
    pthread_t filler, freers[2], allocator;
    pthread_create(&filler, NULL, fill_race_blocks, (void *)(uintptr_t)(round + 1));
    join_released(filler); /* the allocator's heap stays parked: the next filler takes it */
    pthread_create(&allocator, NULL, allocate_meanwhile, (void *)(uintptr_t)(round + 100));
    for (int i = 0; i < 2; i++)
      pthread_create(&freers[i], NULL, free_race_half, (void *)(uintptr_t)i);
    for (int i = 0; i < 2; i++)
      pthread_join(freers[i], NULL);
    pthread_join(allocator, NULL);
  }
  vm_purge_collect(true); /* releases the parked heap and tidies what is left */
  assert_true(vm_heap_is_valid(vm_heap_tls));
  vm_census_t census;
  vm_segment_census(&census, false);
  assert_int_equal(census.abandoned_segments, 0);
}

/* A thread that exits holding full pages: adopting them must take them as they are
 * (FULL, on no queue) and leave a valid heap. */
static void *fill_pages_and_exit(void *arg) {
  void **blocks = arg;
  for (int i = 0; i < 3 * 1024 + 100; i++) /* three full 64-byte pages and part of one */
    blocks[i] = vm_malloc(64);
  return NULL;
}

static void full_pages_of_exited_threads_are_adopted(void **state) {
  (void)state;
  static void *blocks[3 * 1024 + 100];
  void *own[10]; /* this heap has a queue for the class too */
  for (int i = 0; i < 10; i++)
    own[i] = vm_malloc(64);
  pthread_t t;
  pthread_create(&t, NULL, fill_pages_and_exit, blocks);
  join_released(t);
  assert_true(vm_segment_adopt_all(vm_heap_tls));
  assert_true(vm_heap_is_valid(vm_heap_tls));
  for (int i = 0; i < 10; i++)
    vm_free(own[i]);
  for (int i = 0; i < 3 * 1024 + 100; i++)
    vm_free(blocks[i]);
  void *more[2048];
  for (int i = 0; i < 2048; i++)
    more[i] = vm_malloc(64);
  assert_true(vm_heap_is_valid(vm_heap_tls));
  for (int i = 0; i < 2048; i++)
    vm_free(more[i]);
  assert_true(vm_heap_is_valid(vm_heap_tls));
}

/* A thread that starts, allocates one block of a class and exits, over and over: each
 * new thread takes the last one's parked heap, or, with the heaps released at once, has no
 * room of its own and adopts the last exited thread's segment. Either way it finds room
 * for the block in the page already there, not in a new page. */
enum { SHORT_THREADS = 300 };
static void *keep_one_block(void *arg) {
  void **slot = arg;
  *slot = vm_malloc(64);
  memset(*slot, 0x3c, 64);
  return NULL;
}

static void short_threads_keep_one_block(bool released) {
  static void *kept[SHORT_THREADS];
  vm_census_t before, after;
  vm_segment_census(&before, false);
  for (int i = 0; i < SHORT_THREADS; i++) {
    pthread_t t;
    pthread_create(&t, NULL, keep_one_block, &kept[i]);
    if (released)
      join_released(t);
    else
      pthread_join(t, NULL);
  }
  vm_segment_census(&after, false);
  unsigned c = vm_class_of(64);
  /* 300 blocks of 64 bytes fill under a third of one 64 KiB page */
  assert_true(after.class_pages[c] <= before.class_pages[c] + 2);
  assert_true(after.segments <= before.segments + 2);
  for (int i = 0; i < SHORT_THREADS; i++) {
    assert_int_equal(((unsigned char *)kept[i])[63], 0x3c);
    vm_free(kept[i]);
  }
  vm_purge_collect(false);
  assert_true(vm_heap_is_valid(vm_heap_tls));
}

static void threads_that_keep_one_block_share_pages(void **state) {
  (void)state;
  short_threads_keep_one_block(false);
  short_threads_keep_one_block(true);
}

/* The heap of an exited thread waits, parked, with its pages: the next thread to start
 * takes it and allocates where the last one did, with no new segment and no adoption,
 * after other threads freed into it meanwhile. */
static void *allocate_and_free_all(void *arg) {
  void **blocks = arg;
  allocate_and_exit(blocks);
  for (int i = 0; i < BLOCKS; i += 2)
    vm_free(blocks[i]); /* half by their own thread, the rest by another after the exit */
  return NULL;
}

/* Runs fn(arg) on a new thread that starts with an empty heap: no parked heap is left
 * for it to take. *start (if not NULL) gets the census taken just before. */
static void run_on_empty_heap(void *(*fn)(void *), void *arg, vm_census_t *start) {
  vm_heap_release_parked(vm_os_now_ms(), true);
  if (start != NULL)
    vm_segment_census(start, false);
  pthread_t t;
  pthread_create(&t, NULL, fn, arg);
  pthread_join(t, NULL);
}

static void next_thread_takes_the_parked_heap(void **state) {
  (void)state;
  static void *first[BLOCKS], *second[BLOCKS];
  vm_census_t start, parked, taken;
  run_on_empty_heap(allocate_and_free_all, first, &start);
  vm_segment_census(&parked, false);
  assert_int_equal(parked.abandoned_segments, start.abandoned_segments);
  assert_true(parked.segments > start.segments);
  for (int i = 1; i < BLOCKS; i += 2) {
    assert_int_equal(*(unsigned char *)first[i], 0x5a);
    vm_free(first[i]);
  }
  pthread_t t;
  pthread_create(&t, NULL, allocate_and_free_all, second);
  pthread_join(t, NULL);
  vm_segment_census(&taken, false);
  assert_int_equal(taken.segments, parked.segments);
  assert_int_equal(taken.abandoned_segments, start.abandoned_segments);
  /* every block had come back: the page starts again from its first block */
  assert_ptr_equal(second[0], first[0]);
  for (int i = 1; i < BLOCKS; i += 2)
    vm_free(second[i]);
  vm_heap_release_parked(vm_os_now_ms(), true);
}

/* A buffer grown through the classes of big blocks, as by realloc: each class it leaves
 * has no block in use, and the next class takes its page rather than a new one, so the
 * pass ends with two pages, not one in every class it passed through. */
static void *grow_through_big_classes(void *arg) {
  size_t *pages = arg;
  void *block = vm_malloc(VM_SMALL_MAX + 1);
  assert_non_null(block);
  for (size_t size = VM_SMALL_MAX + 1; size <= VM_MEDIUM_MAX; size += size / 8) {
    void *bigger = vm_malloc(size);
    assert_non_null(bigger);
    memset(bigger, 1, size);
    vm_free(block);
    block = bigger;
  }
  vm_free(block);
  *pages = 0;
  for (unsigned c = VM_SMALL_CLASSES + 1; c <= VM_CLASS_COUNT; c++)
    for (vm_page_t *page = vm_heap_tls->queues[c].first; page != NULL; page = page->next)
      ++*pages;
  return NULL;
}

static void a_buffer_growing_through_big_classes_keeps_two_pages(void **state) {
  (void)state;
  size_t pages;
  run_on_empty_heap(grow_through_big_classes, &pages, NULL);
  assert_in_range(pages, 1, 2);
  vm_heap_release_parked(vm_os_now_ms(), true);
}

/* A parked heap that no thread takes goes after the purge delay, not before: its segments
 * are abandoned, where other heaps adopt them and the purge schedule reaches them. */
static void parked_heap_is_released_after_the_purge_delay(void **state) {
  (void)state;
  static void *blocks[BLOCKS];
  vm_census_t start, parked, census;
  run_on_empty_heap(allocate_and_exit, blocks, &start);
  int64_t exited = vm_os_now_ms();
  int64_t delay = vm_option(VM_OPTION_PURGE_DELAY_MS);
  size_t in_use, made, parked_heaps;
  vm_heap_count(&in_use, &made, &parked_heaps);
  assert_int_equal(parked_heaps, 1);
  vm_segment_census(&parked, false);
  vm_heap_release_parked(exited + delay / 2, false);
  vm_segment_census(&census, false);
  assert_int_equal(census.abandoned_segments, parked.abandoned_segments);
  vm_heap_release_parked(exited + delay + 1, false);
  vm_segment_census(&census, false);
  assert_true(census.abandoned_segments > parked.abandoned_segments);
  vm_heap_count(&in_use, &made, &parked_heaps);
  assert_int_equal(parked_heaps, 0);
  for (int i = 0; i < BLOCKS; i++) {
    assert_int_equal(*(unsigned char *)blocks[i], 0x5a);
    vm_free(blocks[i]);
  }
  vm_segment_census(&census, false); /* an abandoned one it adopted went back too */
  assert_int_equal(census.abandoned_segments, start.abandoned_segments);
}

/* A thread that frees another live thread's blocks keeps some to hand out itself, but
 * not blocks smaller than a cache line: those share their line with blocks their owner
 * hands out, and reusing them here would have two threads write one line. */
typedef struct {
  void *small, *medium;
  size_t small_kept, medium_kept;
} foreign_case_t;

static void *free_anothers_blocks(void *arg) {
  foreign_case_t *c = arg;
  void *own = vm_malloc(16); /* gives this thread its heap */
  vm_free(c->small);
  vm_free(c->medium);
  c->small_kept = vm_heap_tls->foreign_count[vm_class_of(16)];
  c->medium_kept = vm_heap_tls->foreign_count[vm_class_of(128)];
  vm_free(own);
  return NULL;
}

static void small_blocks_go_home_from_other_threads(void **state) {
  (void)state;
  foreign_case_t c = {vm_malloc(16), vm_malloc(128), 0, 0};
  vm_page_t *small_page = vm_page_of(vm_segment_of(c.small), c.small);
  pthread_t t;
  pthread_create(&t, NULL, free_anothers_blocks, &c);
  pthread_join(t, NULL);
  assert_int_equal(c.small_kept, 0);
  assert_int_equal(c.medium_kept, 1);
  /* the small block went home at once; the medium one when the thread exited */
  uintptr_t remote = atomic_load(vm_page_thread_free(small_page));
  assert_true((remote >> VM_THREAD_FREE_COUNT_SHIFT) >= 1);
  assert_true(vm_heap_is_valid(vm_heap_tls));
}

/* The allocator's lock under contention, with more threads than CPUs, so holders are
 * preempted and waiters go to sleep: every increment made under it must count. */
enum { LOCK_THREADS = 6, LOCK_ROUNDS = 200000 };
static vm_lock_t counted_lock;
static unsigned long lock_counter; /* plain: only the lock orders the increments */

static void *count_under_lock(void *arg) {
  (void)arg;
  for (int i = 0; i < LOCK_ROUNDS; i++) {
    vm_lock(&counted_lock);
    unsigned long seen = lock_counter;
    if ((i & 255) == 0)
      sched_yield(); /* gives up the CPU holding the lock: the others must wait */
    lock_counter = seen + 1;
    vm_unlock(&counted_lock);
  }
  return NULL;
}

static void lock_excludes_under_contention(void **state) {
  (void)state;
  pthread_t threads[LOCK_THREADS];
  for (int i = 0; i < LOCK_THREADS; i++)
    pthread_create(&threads[i], NULL, count_under_lock, NULL);
  for (int i = 0; i < LOCK_THREADS; i++)
    pthread_join(threads[i], NULL);
  assert_int_equal(lock_counter, (unsigned long)LOCK_THREADS * LOCK_ROUNDS);
  assert_int_equal(atomic_load(&counted_lock.held), 0);
}

/* Mixed stress: every thread allocates, writes, and passes blocks around a ring of
 * mailboxes, so most frees are remote; contents are checked before every free. */
enum { THREADS = 6, MAILBOX = 512, ROUNDS = 60000 };
static _Atomic(uint8_t *) mailbox[THREADS][MAILBOX];

static void check_and_free(uint8_t *p) {
  size_t n = (size_t)p[0] | (size_t)p[1] << 8 | (size_t)p[2] << 16;
  for (size_t k = 3; k < n && k < 256; k++)
    if (p[k] != (uint8_t)(n + k))
      abort();
  vm_free(p);
}

static void *ring_worker(void *arg) {
  uintptr_t self = (uintptr_t)arg;
  uint64_t rng = self + 1;
  for (int round = 0; round < ROUNDS; round++) {
    size_t n = 3 + unit_rand(&rng) % 2000;
    if (unit_rand(&rng) % 500 == 0)
      n = 3 + unit_rand(&rng) % (3 << 20);
    uint8_t *p = vm_malloc(n);
    if (p == NULL)
      abort();
    p[0] = (uint8_t)n;
    p[1] = (uint8_t)(n >> 8);
    p[2] = (uint8_t)(n >> 16);
    for (size_t k = 3; k < n && k < 256; k++)
      p[k] = (uint8_t)(n + k);
    size_t target = (self + 1 + unit_rand(&rng) % (THREADS - 1)) % THREADS;
    uint8_t *old = atomic_exchange(&mailbox[target][unit_rand(&rng) % MAILBOX], p);
    if (old != NULL)
      check_and_free(old);
  }
  return NULL;
}

static void threads_passing_blocks_around(void **state) {
  (void)state;
  pthread_t threads[THREADS];
  for (uintptr_t i = 0; i < THREADS; i++)
    pthread_create(&threads[i], NULL, ring_worker, (void *)i);
  for (int i = 0; i < THREADS; i++)
    pthread_join(threads[i], NULL);
  for (int t = 0; t < THREADS; t++)
    for (int i = 0; i < MAILBOX; i++) {
      uint8_t *p = atomic_exchange(&mailbox[t][i], NULL);
      if (p != NULL)
        check_and_free(p);
    }
  vm_purge_collect(false);
  vm_census_t census;
  vm_segment_census(&census, false);
  assert_int_equal(census.abandoned_segments, 0);
  assert_true(vm_heap_is_valid(vm_heap_tls));
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(blocks_freed_by_another_thread_come_back),
      cmocka_unit_test(full_abandoned_segments_wait_for_a_free),
      cmocka_unit_test(heaps_of_exited_threads_are_adopted),
      cmocka_unit_test(pages_of_exited_threads_go_back_when_emptied),
      cmocka_unit_test(exited_threads_blocks_freed_while_others_adopt),
      cmocka_unit_test(full_pages_of_exited_threads_are_adopted),
      cmocka_unit_test(threads_that_keep_one_block_share_pages),
      cmocka_unit_test(next_thread_takes_the_parked_heap),
      cmocka_unit_test(parked_heap_is_released_after_the_purge_delay),
      cmocka_unit_test(a_buffer_growing_through_big_classes_keeps_two_pages),
      cmocka_unit_test(threads_passing_blocks_around),
      cmocka_unit_test(lock_excludes_under_contention),
      cmocka_unit_test(small_blocks_go_home_from_other_threads),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
