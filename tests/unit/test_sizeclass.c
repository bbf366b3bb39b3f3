/* The class table: the mapping is minimal and monotonic, the waste bound in sizeclass.c
 * holds, every class fits its page and takes more blocks than the next, and an aligned
 * request finds an aligned class (alloc.c relies on that). */
#include "unit.h"

static void class_of_is_the_smallest_class_that_fits(void **state) {
  (void)state;
  for (size_t n = 0; n <= VM_MEDIUM_MAX; n++) {
    unsigned c = vm_class_of(n);
    assert_true(c >= 1 && c <= VM_CLASS_COUNT);
    assert_true(vm_class_size[c] >= n);
    if (c > 1)
      assert_true(vm_class_size[c - 1] < n);
  }
}

static void sizes_increase_and_are_16_byte_multiples(void **state) {
  (void)state;
  for (unsigned c = 1; c <= VM_CLASS_COUNT; c++) {
    assert_true(vm_class_size[c] > vm_class_size[c - 1]);
    assert_int_equal(vm_class_size[c] % VM_ALIGN, 0);
  }
  assert_int_equal(vm_class_size[VM_CLASS_COUNT], VM_MEDIUM_MAX);
}

static void waste_is_bounded(void **state) {
  (void)state;
  for (size_t n = 1; n <= VM_MEDIUM_MAX; n++) {
    size_t block = vm_class_size[vm_class_of(n)];
    if (n <= 128)
      assert_true(block - n < VM_ALIGN);
    else
      assert_true((block - n) * 5 < block); /* under 20% of the block */
  }
}

static void every_class_fits_its_page(void **state) {
  (void)state;
  for (unsigned c = 1; c <= VM_CLASS_COUNT; c++) {
    size_t slices = vm_class_slices[c];
    assert_true(slices >= 1 && slices < (size_t)VM_SLICES);
    assert_true(slices * VM_SLICE_SIZE / vm_class_size[c] >= 4);
  }
}

/* The aligned class is aligned, holds n, and is the rounded request's class or, where
 * that one is not aligned (4368), the next. */
static void the_aligned_class_is_aligned_and_at_most_one_class_up(void **state) {
  (void)state;
  for (size_t align = 32; align <= VM_SLICE_SIZE; align *= 2)
    for (size_t n = 0; n <= VM_MEDIUM_MAX; n += 7) {
      size_t rounded = vm_align_up(n == 0 ? 1 : n, align);
      if (rounded > VM_MEDIUM_MAX)
        break;
      unsigned c = vm_class_of_aligned(n, align);
      assert_int_equal(vm_class_size[c] % align, 0);
      assert_true(vm_class_size[c] >= n);
      assert_true(c - vm_class_of(rounded) <= 1);
    }
}

/* The table part of vm_class_of ends where the formula part begins. */
static void the_small_classes_end_at_the_small_maximum(void **state) {
  (void)state;
  assert_int_equal(vm_class_size[VM_SMALL_CLASSES], VM_SMALL_MAX);
  assert_int_equal(vm_class_of(VM_SMALL_MAX + 1), VM_SMALL_CLASSES + 1);
}

/* In (4 KiB, 8 KiB] no class fits only as many blocks in a page as the next one up. */
static void no_small_class_is_dominated_by_the_next(void **state) {
  (void)state;
  for (unsigned c = 1; c < VM_SMALL_CLASSES; c++)
    assert_true(VM_SLICE_SIZE / vm_class_size[c] > VM_SLICE_SIZE / vm_class_size[c + 1]);
}

int main(void) {
  vm_init_process(); /* fills the class table */
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(class_of_is_the_smallest_class_that_fits),
      cmocka_unit_test(sizes_increase_and_are_16_byte_multiples),
      cmocka_unit_test(waste_is_bounded),
      cmocka_unit_test(every_class_fits_its_page),
      cmocka_unit_test(the_aligned_class_is_aligned_and_at_most_one_class_up),
      cmocka_unit_test(the_small_classes_end_at_the_small_maximum),
      cmocka_unit_test(no_small_class_is_dominated_by_the_next),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
