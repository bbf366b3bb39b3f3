/* The OS layer and the registry: aligned reservations, purging, residency, remapping. */
#include "unit.h"

#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

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

/* The pages check_zeroing writes before it zeroes: all but one page in 35 (1 - 1/5 - 1/7 +
 * 1/35 of them are not written), and the last. */
static size_t pages_written(size_t pages) {
  size_t n = 0;
  for (size_t i = 0; i < pages; i++)
    n += i % 5 == 0 || i % 7 == 0 || i == pages - 1;
  return n;
}

static void zero_by_pagemap(void *p, size_t size) {
  size_t own;
  assert_true(vm_os_zero_held(p, size, &own));
  /* the whole pages written, but the last, which the 100 bytes cut short */
  assert_int_equal(own, (pages_written(3000) - 1) * vm_os_page_size());
}
static void zero_counting(void *p, size_t size) {
  assert_int_equal(vm_os_zero(p, size), (pages_written(3000) - 1) * vm_os_page_size());
}

static void zeroing_clears_and_keeps_resident_pages(void **state) {
  (void)state;
  check_zeroing(zero_by_pagemap, true);
  check_zeroing(zero_counting, true); /* pagemap is readable here */
  check_zeroing(vm_os_zero_dropping, false);
}

static long minor_faults(void) {
  struct rusage usage;
  getrusage(RUSAGE_SELF, &usage);
  return usage.ru_minflt;
}

/* Pages the program only read map the kernel's shared zero page. Writing zeros over them
 * would give each a page of its own, a fault and memory for nothing: zeroing leaves them.
 * (Where the kernel gives a page only read a page of its own, as under some hypervisors,
 * writing it costs no fault either.) */
static long faults_zeroing_read_pages(void) {
  size_t page = vm_os_page_size(), pages = 256;
  uint8_t *p = vm_os_map(pages * page);
  assert_non_null(p);
  unsigned sum = 0;
  for (size_t i = 0; i < pages; i++)
    sum += ((volatile uint8_t *)p)[i * page];
  assert_int_equal(sum, 0);
  memset(p + 7 * page, 0xab, page);
  long before = minor_faults();
  vm_os_zero(p, pages * page);
  long faults = minor_faults() - before;
  for (size_t i = 0; i < pages * page; i += 64)
    assert_int_equal(p[i], 0);
  vm_os_release(p, pages * page);
  return faults;
}

static void zeroing_leaves_pages_only_read(void **state) {
  (void)state;
  /* ru_minflt counts the whole process: on a busy machine, about one run in a hundred
   * under ASan counts one fault that is not the zeroing's. The best of three runs is the
   * zeroing's own; writing the pages only read would fault in all 255 of them every time. */
  long faults = faults_zeroing_read_pages();
  for (int run = 1; run < 3 && faults > 1; run++) {
    long again = faults_zeroing_read_pages();
    faults = again < faults ? again : faults;
  }
  assert_true(faults <= 1); /* the first page, written to check pagemap */
}

/* After fork, parent and child share their pages until one writes: such a page is not the
 * process's own, and does not read as zero, so zeroing writes it (in the child's copy). */
static void zeroing_clears_pages_shared_since_fork(void **state) {
  (void)state;
  size_t page = vm_os_page_size(), size = 64 * page;
  uint8_t *p = vm_os_map(size);
  assert_non_null(p);
  memset(p, 0xab, size);
  pid_t child = fork();
  assert_true(child >= 0);
  if (child == 0) {
    vm_os_zero(p, size);
    for (size_t i = 0; i < size; i++)
      if (p[i] != 0)
        _exit(1);
    _exit(0);
  }
  int status;
  assert_int_equal(waitpid(child, &status, 0), child);
  assert_true(WIFEXITED(status));
  assert_int_equal(WEXITSTATUS(status), 0);
  for (size_t i = 0; i < size; i += 64)
    assert_int_equal(p[i], 0xab);
  vm_os_release(p, size);
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
      cmocka_unit_test(zeroing_leaves_pages_only_read),
      cmocka_unit_test(zeroing_clears_pages_shared_since_fork),
      cmocka_unit_test(remap_moves_pages_without_losing_them),
      cmocka_unit_test(registry_answers_for_any_pointer),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
