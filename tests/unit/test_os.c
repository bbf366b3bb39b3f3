/* The OS layer and the registry: aligned reservations, purging, residency, remapping. */
#include "unit.h"

#include <string.h>

static void reservations_are_aligned_and_zeroed(void **state) {
  (void)state;
  for (size_t align = VM_SEGMENT_SIZE; align <= 4 * VM_SEGMENT_SIZE; align *= 2) {
    uint8_t *p = vm_os_reserve_aligned(VM_SEGMENT_SIZE, align, false);
    assert_non_null(p);
    assert_int_equal((uintptr_t)p % align, 0);
    assert_int_equal(p[0] | p[VM_SEGMENT_SIZE - 1], 0);
    vm_os_release(p, VM_SEGMENT_SIZE);
  }
}

/* Mapping and unmapping a segment in a loop takes the same range each time instead of
 * walking down the address space (see vm_os_release_aligned). */
static void a_released_range_is_mapped_again(void **state) {
  (void)state;
  uint8_t *first = vm_os_reserve_aligned(VM_SEGMENT_SIZE, VM_SEGMENT_SIZE, false);
  assert_non_null(first);
  vm_os_release_aligned(first, VM_SEGMENT_SIZE);
  for (int round = 0; round < 50; round++) {
    uint8_t *p = vm_os_reserve_aligned(VM_SEGMENT_SIZE, VM_SEGMENT_SIZE, false);
    assert_ptr_equal(p, first);
    vm_os_release_aligned(p, VM_SEGMENT_SIZE);
  }
}

static void purge_now_drops_residency_and_zeroes(void **state) {
  (void)state;
  size_t size = 64 * vm_os_page_size();
  uint8_t *p = vm_os_map(size);
  memset(p, 0xab, size);
  assert_int_equal(vm_os_resident_bytes(p, size), size);
  assert_int_equal(vm_os_purge(p, size, true), VM_PURGE_DONE);
  assert_int_equal(vm_os_resident_bytes(p, size), 0);
  for (size_t i = 0; i < size; i += 512)
    assert_int_equal(p[i], 0);
  memset(p, 0xcd, size);
  assert_int_equal(vm_os_purge(p, size, false), VM_PURGE_LAZY); /* contents may survive */
  vm_os_release(p, size);
}

/* Zeroing clears every byte it is given and keeps the bytes past the end; `keeps_pages`:
 * it writes the pages that hold memory and leaves the others, so exactly the pages
 * resident before are resident after; else it drops them all. */
static void check_zeroing(void (*zero)(void *p, size_t size), bool keeps_pages) {
  size_t page = vm_os_page_size(), pages = 3000; /* more than one pagemap batch */
  size_t size = pages * page, cleared = size - 100;
  uint8_t *p = vm_os_map(size);
  assert_non_null(p);
  size_t written = 0;
  for (size_t i = 0; i < pages; i++)
    if (i % 5 == 0 || i % 7 == 0 || i == pages - 1) { /* runs of both kinds, of varied lengths */
      memset(p + i * page, 0xab, page);
      written++;
    }
  assert_int_equal(vm_os_resident_bytes(p, size), written * page);
  zero(p, cleared);
  assert_int_equal(vm_os_resident_bytes(p, size), keeps_pages ? written * page : page);
  for (size_t i = 0; i < pages; i++) {
    if (i % 5 == 0 || i % 7 == 0)
      for (size_t j = 0; j < page; j += 64)
        assert_int_equal(p[i * page + j], 0);
  }
  for (size_t i = (pages - 1) * page; i < cleared; i++)
    assert_int_equal(p[i], 0);
  for (size_t i = cleared; i < size; i++)
    assert_int_equal(p[i], 0xab);
  for (size_t i = 1; i < pages - 1; i++)
    assert_int_equal(p[i * page + 8], 0);
  vm_os_release(p, size);
}

static void zero_by_pagemap(void *p, size_t size) { assert_true(vm_os_zero_held(p, size)); }

static void zeroing_clears_and_keeps_resident_pages(void **state) {
  (void)state;
  check_zeroing(zero_by_pagemap, true);
  check_zeroing(vm_os_zero, true); /* pagemap is readable here */
  check_zeroing(vm_os_zero_dropping, false);
}

static void remap_moves_pages_without_losing_them(void **state) {
  (void)state;
  size_t size = 2 * VM_SEGMENT_SIZE;
  uint8_t *p = vm_os_reserve_aligned(size, VM_SEGMENT_SIZE, false);
  for (size_t i = 0; i < size; i += 4096)
    p[i] = (uint8_t)(i >> 12);
  uint8_t *q = vm_os_remap_aligned(p, size, 4 * size, VM_SEGMENT_SIZE);
  assert_non_null(q);
  assert_int_equal((uintptr_t)q % VM_SEGMENT_SIZE, 0);
  for (size_t i = 0; i < size; i += 4096)
    assert_int_equal(q[i], (uint8_t)(i >> 12));
  assert_int_equal(q[4 * size - 1], 0);
  assert_true(vm_os_resize_in_place(q, 4 * size, size));
  vm_os_release(q, size);
}

static void registry_answers_for_any_pointer(void **state) {
  (void)state;
  vm_segment_t *segment = vm_os_reserve_aligned(VM_SEGMENT_SIZE, VM_SEGMENT_SIZE, false);
  assert_false(vm_registry_contains(segment));
  vm_registry_add(segment);
  assert_true(vm_registry_contains(segment));
  assert_false(vm_registry_contains((uint8_t *)segment + VM_SEGMENT_SIZE));
  vm_registry_remove(segment);
  assert_false(vm_registry_contains(segment));
  assert_false(vm_registry_contains(NULL));
  assert_false(vm_registry_contains((void *)~(uintptr_t)0));
  assert_false(vm_registry_contains((void *)((uintptr_t)1 << 50)));
  vm_os_release(segment, VM_SEGMENT_SIZE);
}

int main(void) {
  vm_os_init(false);
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(reservations_are_aligned_and_zeroed),
      cmocka_unit_test(a_released_range_is_mapped_again),
      cmocka_unit_test(purge_now_drops_residency_and_zeroes),
      cmocka_unit_test(zeroing_clears_and_keeps_resident_pages),
      cmocka_unit_test(remap_moves_pages_without_losing_them),
      cmocka_unit_test(registry_answers_for_any_pointer),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
