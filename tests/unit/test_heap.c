/* One thread's heap: invariants after random work, page retirement, large and huge
 * blocks, and the census that mallinfo2 reports. */
#include "unit.h"

#include <string.h>
#include <time.h>

#define SLOTS 2048

static void random_work_keeps_the_heap_valid(void **state) {
  (void)state;
  static uint8_t *slots[SLOTS];
  static size_t sizes[SLOTS];
  uint64_t rng = 42;
  for (int round = 0; round < 200000; round++) {
    size_t i = unit_rand(&rng) % SLOTS;
    if (slots[i] != NULL) {
      for (size_t k = 0; k < sizes[i]; k++)
        assert_int_equal(slots[i][k], (uint8_t)(i + k));
      vm_free(slots[i]);
      slots[i] = NULL;
      continue;
    }
    size_t n = unit_rand(&rng) % 3000;
    if (unit_rand(&rng) % 100 == 0)
      n = unit_rand(&rng) % (VM_LARGE_MAX + 100000);
    slots[i] = vm_malloc(n);
    assert_non_null(slots[i]);
    assert_int_equal((uintptr_t)slots[i] % VM_ALIGN, 0);
    assert_true(vm_usable_size(slots[i]) >= n);
    sizes[i] = n < 64 ? n : 64;
    for (size_t k = 0; k < sizes[i]; k++)
      slots[i][k] = (uint8_t)(i + k);
    if (round % 10000 == 0)
      assert_true(vm_heap_is_valid(vm_heap_tls));
    if (round % 10000 == 5000) { /* pages lose their free end, with blocks in use anywhere */
      vm_heap_purge_pages(vm_heap_tls, true);
      assert_true(vm_heap_is_valid(vm_heap_tls));
    }
  }
  assert_true(vm_heap_is_valid(vm_heap_tls));
  for (size_t i = 0; i < SLOTS; i++) {
    vm_free(slots[i]);
    slots[i] = NULL;
  }
  assert_true(vm_heap_is_valid(vm_heap_tls));
}

/* free's one-compare test of a pointer against a page, checked against division at every
 * 16-byte offset of every class's page and a little beyond, before it, and at every byte
 * of a few classes' first blocks, for an empty, a partly and a fully carved page. */
static void block_start_test_accepts_exactly_the_carved_blocks(void **state) {
  (void)state;
  const uintptr_t area = (uintptr_t)1 << 20; /* any 16-aligned address: only offsets count */
  for (unsigned c = 1; c <= VM_CLASS_COUNT; c++) {
    vm_page_t page;
    memset(&page, 0, sizeof page);
    page.area_low = (uint32_t)area;
    size_t size = vm_class_size[c], span = (size_t)vm_class_slices[c] * VM_SLICE_SIZE;
    size_t reserved = span / size;
    vm_page_set_block_size(&page, size);
    const size_t capacities[] = {0, 1, reserved / 2, reserved};
    for (size_t k = 0; k < sizeof capacities / sizeof capacities[0]; k++) {
      size_t capacity = capacities[k];
      vm_page_set_capacity(&page, (uint16_t)capacity);
      for (size_t offset = 0; offset < span + 2 * size; offset += VM_ALIGN) {
        bool expected = offset % size == 0 && offset / size < capacity;
        if (vm_page_is_block_start(&page, (void *)(area + offset)) != expected)
          fail_msg("class %u (%zu B), capacity %zu: offset %zu", c, size, capacity, offset);
      }
      for (size_t before = VM_ALIGN; before <= 4 * size; before += VM_ALIGN)
        if (vm_page_is_block_start(&page, (void *)(area - before)))
          fail_msg("class %u (%zu B): %zu bytes before the area", c, size, before);
      if (c % 8 == 1 && capacity >= 2)
        for (size_t offset = 1; offset < 2 * size; offset++)
          if (offset != size && vm_page_is_block_start(&page, (void *)(area + offset)))
            fail_msg("class %u (%zu B): unaligned offset %zu", c, size, offset);
    }
  }
}

static void emptied_pages_go_back_except_the_current_one(void **state) {
  (void)state;
  enum { COUNT = 20000 }; /* 48-byte blocks: several pages */
  static void *blocks[COUNT];
  vm_census_t before, full, after;
  vm_segment_census(&before, false);
  for (int i = 0; i < COUNT; i++)
    blocks[i] = vm_malloc(48);
  vm_segment_census(&full, false);
  assert_true(full.class_pages[vm_class_of(48)] >= before.class_pages[vm_class_of(48)] + 10);
  for (int i = 0; i < COUNT; i++)
    vm_free(blocks[i]);
  vm_segment_census(&after, false);
  assert_true(after.class_pages[vm_class_of(48)] <= 1);
  assert_true(vm_heap_is_valid(vm_heap_tls));
}

/* A trim makes a page's free blocks past its last block in use uncarved; those before it
 * stay on the free list, and the page carves the rest again as it fills. */
static void trim_uncarves_the_free_end_of_a_page(void **state) {
  (void)state;
  const size_t size = 2816; /* a class of one-slice pages that no other test keeps blocks in */
  enum { COUNT = 23 };      /* the blocks of one such page */
  uint8_t *blocks[COUNT];
  for (int i = 0; i < COUNT; i++)
    blocks[i] = vm_malloc(size);
  vm_page_t *page = vm_page_of(vm_segment_of(blocks[0]), blocks[0]);
  uint8_t *area = vm_page_area(vm_segment_of(page), page);
  size_t kept_index[2] = {SIZE_MAX, SIZE_MAX}; /* two blocks of the page: its lowest two */
  for (int i = 0; i < COUNT; i++) {
    if (vm_page_of(vm_segment_of(blocks[i]), blocks[i]) != page)
      continue;
    size_t index = (size_t)(blocks[i] - area) / size;
    if (index < kept_index[0]) {
      kept_index[1] = kept_index[0];
      kept_index[0] = index;
    } else if (index < kept_index[1]) {
      kept_index[1] = index;
    }
  }
  assert_true(kept_index[1] != SIZE_MAX && page->capacity > kept_index[1] + 1);
  for (int i = 0; i < COUNT; i++) {
    size_t index = (size_t)(blocks[i] - area) / size;
    if (vm_page_of(vm_segment_of(blocks[i]), blocks[i]) == page &&
        (index == kept_index[0] || index == kept_index[1]))
      memset(blocks[i], 0x5a, size);
    else
      vm_free(blocks[i]), blocks[i] = NULL;
  }
  vm_heap_purge_pages(vm_heap_tls, true);
  assert_int_equal(page->capacity, kept_index[1] + 1);
  assert_true(vm_page_is_valid(page));
  /* the page fills again: every block once, the kept ones untouched */
  uint8_t *again[COUNT];
  for (int i = 0; i < COUNT; i++) {
    again[i] = vm_malloc(size);
    assert_non_null(again[i]);
    for (int k = 0; k < COUNT; k++)
      assert_true(blocks[k] != again[i]);
    for (int k = 0; k < i; k++)
      assert_true(again[k] != again[i]);
  }
  assert_true(vm_page_is_valid(page));
  for (int i = 0; i < COUNT; i++) {
    if (blocks[i] != NULL)
      for (size_t k = 0; k < size; k++)
        assert_int_equal(blocks[i][k], 0x5a);
    vm_free(blocks[i]);
    vm_free(again[i]);
  }
  assert_true(vm_heap_is_valid(vm_heap_tls));
}

static void census_counts_live_bytes(void **state) {
  (void)state;
  enum { COUNT = 1000 };
  static void *blocks[COUNT];
  vm_census_t before, during, after;
  vm_segment_census(&before, false);
  for (int i = 0; i < COUNT; i++)
    blocks[i] = vm_malloc(10240);
  vm_segment_census(&during, false);
  assert_int_equal(during.live_bytes - before.live_bytes, (size_t)COUNT * 10240);
  for (int i = 0; i < COUNT; i++)
    vm_free(blocks[i]);
  vm_segment_census(&after, false);
  assert_int_equal(after.live_bytes, before.live_bytes);
}

static void large_blocks_reuse_their_slices(void **state) {
  (void)state;
  void *first = vm_malloc(VM_MEDIUM_MAX + 1);
  assert_non_null(first);
  assert_int_equal((uintptr_t)first % VM_SLICE_SIZE, 0);
  assert_int_equal(vm_usable_size(first), 3 * VM_SLICE_SIZE);
  vm_free(first);
  size_t calls = atomic_load(&vm_os_stats.mmap_calls);
  for (int i = 0; i < 1000; i++) {
    void *p = vm_malloc(VM_LARGE_MAX);
    assert_non_null(p);
    memset(p, 1, 4096);
    vm_free(p);
  }
  assert_int_equal(atomic_load(&vm_os_stats.mmap_calls), calls);
}

/* A freed run still resident is taken before a clean one, even one at a lower address:
 * the clean run would fault in fresh memory while the freed one waits to be purged. */
static void large_blocks_take_resident_slices_first(void **state) {
  (void)state;
  size_t size = 4 * VM_SLICE_SIZE;
  vm_segment_purge_everything(true); /* no freed run left by earlier tests to take */
  uint8_t *low = vm_malloc(size), *middle = vm_malloc(size), *high = vm_malloc(size);
  assert_true(low != NULL && middle != NULL && high != NULL);
  assert_ptr_equal(vm_segment_of(low), vm_segment_of(high));
  assert_true(low < high);
  memset(low, 1, size);
  memset(high, 1, size);
  vm_free(low);
  vm_segment_purge_everything(true); /* low's slices: dropped, they read as zero */
  vm_free(high);                     /* high's: freed, resident */
  void *again = vm_malloc(size);
  assert_ptr_equal(again, high);
  vm_free(again);
  vm_free(middle);
}

/* Of the freed runs that fit, the shortest is taken, not the lowest: a block that fits a
 * hole leaves a longer freed run whole for the bigger block that comes next, which would
 * otherwise fault in a fresh run. */
static void blocks_take_the_shortest_freed_run_that_fits(void **state) {
  (void)state;
  size_t small = 3 * VM_SLICE_SIZE, big = 4 * VM_SLICE_SIZE;
  vm_segment_purge_everything(true); /* no freed run left by earlier tests to take */
  uint8_t *low = vm_malloc(big), *wall = vm_malloc(small);
  uint8_t *hole = vm_malloc(small), *high_wall = vm_malloc(small);
  assert_true(low != NULL && wall != NULL && hole != NULL && high_wall != NULL);
  assert_ptr_equal(vm_segment_of(low), vm_segment_of(high_wall));
  assert_true(low < hole);
  memset(low, 1, big);
  memset(hole, 1, small);
  vm_free(low);
  vm_free(hole);
  void *fits_hole = vm_malloc(small);
  void *fits_low = vm_malloc(big);
  assert_ptr_equal(fits_hole, hole);
  assert_ptr_equal(fits_low, low);
  vm_free(fits_hole);
  vm_free(fits_low);
  vm_free(wall);
  vm_free(high_wall);
}

/* The lazily purged bytes that the purge budget counts match the segments' own masks
 * as slices are purged, reused and dropped. */
static void lazy_bytes_counted_as_the_segments_hold_them(void **state) {
  (void)state;
  enum { BLOCKS = 24 };
  void *blocks[BLOCKS];
  for (int round = 0; round < 3; round++) {
    for (int i = 0; i < BLOCKS; i++) {
      blocks[i] = vm_malloc(VM_LARGE_MAX / 2);
      assert_non_null(blocks[i]);
      memset(blocks[i], 1, VM_LARGE_MAX / 2);
    }
    for (int i = 0; i < BLOCKS; i++)
      vm_free(blocks[i]);
    long wait_ms = (long)vm_purge_delay_ms() + 50; /* past the delay in force */
    struct timespec pause = {wait_ms / 1000, (wait_ms % 1000) * 1000000L};
    nanosleep(&pause, NULL);
    vm_segment_purge_everything(false);
    vm_census_t census;
    vm_segment_census(&census, false);
    assert_true(census.lazy_bytes > 0);
    assert_int_equal(vm_segment_lazy_bytes(), census.lazy_bytes);
  }
  for (int i = 0; i < BLOCKS; i++) /* reuses lazily purged slices */
    blocks[i] = vm_malloc(VM_LARGE_MAX / 2);
  vm_census_t census;
  vm_segment_census(&census, false);
  assert_int_equal(vm_segment_lazy_bytes(), census.lazy_bytes);
  for (int i = 0; i < BLOCKS; i++)
    vm_free(blocks[i]);
  vm_purge_collect(true); /* everything dropped, empty segments unmapped */
  vm_segment_census(&census, false);
  assert_int_equal(census.lazy_bytes, 0);
  assert_int_equal(vm_segment_lazy_bytes(), 0);
}

static void huge_blocks_have_their_own_mapping(void **state) {
  (void)state;
  vm_census_t before, during;
  vm_segment_census(&before, false);
  uint8_t *p = vm_malloc(VM_LARGE_MAX + 1);
  assert_non_null(p);
  vm_segment_census(&during, false);
  assert_int_equal(during.huge_blocks, before.huge_blocks + 1);
  assert_true(vm_usable_size(p) >= VM_LARGE_MAX + 1);
  p[VM_LARGE_MAX] = 7;
  uint8_t *q = vm_realloc(p, 64 << 20);
  assert_non_null(q);
  assert_int_equal(q[VM_LARGE_MAX], 7);
  assert_true(vm_usable_size(q) >= (64u << 20));
  q = vm_realloc(q, 3 << 20);
  assert_int_equal(q[VM_LARGE_MAX], 7);
  vm_free(q);
  vm_census_t after;
  vm_segment_census(&after, false);
  assert_int_equal(after.huge_blocks, before.huge_blocks);
  assert_int_equal(after.huge_bytes, before.huge_bytes);
}

static void aligned_blocks_at_every_alignment(void **state) {
  (void)state;
  for (size_t align = 1; align <= ((size_t)16 << 20); align *= 2) {
    size_t sizes[] = {0, 1, align - 1, align, align + 1, 3 * align, 100000};
    for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
      if (sizes[i] > ((size_t)64 << 20))
        continue;
      uint8_t *p = vm_heap_malloc_aligned(vm_heap_for_thread(), sizes[i], align);
      assert_non_null(p);
      assert_int_equal((uintptr_t)p % align, 0);
      assert_true(vm_usable_size(p) >= sizes[i]);
      if (sizes[i] > 0)
        p[sizes[i] - 1] = 1;
      vm_free(p);
    }
  }
  assert_true(vm_heap_is_valid(vm_heap_tls));
}

static void small_alignment_costs_no_extra_class(void **state) {
  (void)state;
  /* a 4 KiB block at 4 KiB alignment must not cost 8 KiB */
  void *p = vm_aligned_alloc(4096, 4096);
  assert_int_equal(vm_usable_size(p), 4096);
  vm_free(p);
  p = vm_aligned_alloc(64, 100);
  assert_int_equal(vm_usable_size(p), 128);
  vm_free(p);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(random_work_keeps_the_heap_valid),
      cmocka_unit_test(block_start_test_accepts_exactly_the_carved_blocks),
      cmocka_unit_test(emptied_pages_go_back_except_the_current_one),
      cmocka_unit_test(census_counts_live_bytes),
      cmocka_unit_test(trim_uncarves_the_free_end_of_a_page),
      cmocka_unit_test(large_blocks_reuse_their_slices),
      cmocka_unit_test(large_blocks_take_resident_slices_first),
      cmocka_unit_test(blocks_take_the_shortest_freed_run_that_fits),
      cmocka_unit_test(lazy_bytes_counted_as_the_segments_hold_them),
      cmocka_unit_test(huge_blocks_have_their_own_mapping),
      cmocka_unit_test(aligned_blocks_at_every_alignment),
      cmocka_unit_test(small_alignment_costs_no_extra_class),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
