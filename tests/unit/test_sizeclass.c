/* The class table: the mapping is minimal and monotonic, the waste bound in sizeclass.c
 * holds, every class fits its page, and rounding to an alignment lands on an aligned
 * class (alloc.c relies on that). */
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

static void rounding_to_an_alignment_gives_an_aligned_class(void **state) {
  (void)state;
  for (size_t align = 32; align <= VM_SLICE_SIZE; align *= 2)
    for (size_t n = 1; n <= VM_MEDIUM_MAX; n += 7) {
      size_t rounded = vm_align_up(n, align);
      if (rounded > VM_MEDIUM_MAX)
        break;
      assert_int_equal(vm_class_size[vm_class_of(rounded)] % align, 0);
    }
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(class_of_is_the_smallest_class_that_fits),
      cmocka_unit_test(sizes_increase_and_are_16_byte_multiples),
      cmocka_unit_test(waste_is_bounded),
      cmocka_unit_test(every_class_fits_its_page),
      cmocka_unit_test(rounding_to_an_alignment_gives_an_aligned_class),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
