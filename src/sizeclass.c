/* The size classes. Below 128 bytes they step by 16 (the alignment every block needs);
 * above, each doubling (2^k, 2^(k+1)] has four classes, 2^(k-2) apart, except those of
 * (1 KiB, 8 KiB], which have eight, 2^(k-3) apart, with these changes:
 * - (1 KiB, 4 KiB] has two more just above the power of two, at 2^k + 2^(k-6) and
 *   2^k + 2^(k-4) (1040, 1088; 2112, 2176): that is where programs put a power of two
 *   plus a header (a database's records and pages, network buffers: sqlite asks for 1032
 *   and 4104 bytes), which eight classes per doubling would round up by up to an eighth.
 * - (4 KiB, 8 KiB], where a 64 KiB page holds 8 to 15 blocks, is chosen by blocks per
 *   page: a class that fits no more blocks than the next one up only costs a partly
 *   used page of its own, so 6656 and 7680 give way to 7168 and 8192 (9 and 8 a page),
 *   and the class just above 4 KiB is the largest that fits 15, 4368 (sqlite's page
 *   cache asks for exactly that).
 * So a request of n bytes gets a block of at most n + 15 bytes up to 128, and above 128
 * the block exceeds the request by less than a quarter of its size (an eighth between 1
 * and 4 KiB): worst-case internal waste 20% (129 -> 160).
 * A request rounded up to an alignment of 32 or more lands on a class whose size is a
 * multiple of that alignment, so its blocks are aligned, except on 4368 (a multiple of 16
 * only), whose next class is (see vm_class_of_aligned).
 * Pages: classes up to 8 KiB use one 64 KiB slice (at least 8 blocks); larger classes use
 * 576 KiB pages: at least 4 blocks of the 128 KiB class, and 7 pages use all 63 free
 * slices of a segment (512 KiB pages would leave 7 slices of every segment unused). */
#include "internal.h"

#define S(k, i) ((1u << (k)) + (i) * (1u << ((k)-2)))
#define DOUBLING(k) S(k, 1), S(k, 2), S(k, 3), S(k, 4)
#define E(k, i) ((1u << (k)) + (i) * (1u << ((k)-3)))
#define HEADER_DOUBLING(k)                                                                 \
  ((1u << (k)) + (1u << ((k)-6))), ((1u << (k)) + (1u << ((k)-4))), E(k, 1), E(k, 2),        \
      E(k, 3), E(k, 4), E(k, 5), E(k, 6), E(k, 7), E(k, 8)

const uint32_t vm_class_size[VM_CLASS_COUNT + 1] = {
    0,           16,          32,          48,          64,          80,         96,
    112,         128,         DOUBLING(7), DOUBLING(8), DOUBLING(9),
    HEADER_DOUBLING(10), HEADER_DOUBLING(11),
    4368,        E(12, 1),    E(12, 2),    E(12, 3),    E(12, 4),    E(12, 6),   E(12, 8),
    DOUBLING(13), DOUBLING(14),
    DOUBLING(15), DOUBLING(16),
};

#define FOUR(x) x, x, x, x
const uint8_t vm_class_slices[VM_CLASS_COUNT + 1] = {
    0, 1, 1, 1, 1, 1, 1, 1, 1,                                     /* 16 .. 128 */
    FOUR(1), FOUR(1), FOUR(1),                                     /* 160 .. 1 KiB */
    FOUR(1), FOUR(1), FOUR(1), FOUR(1), FOUR(1), FOUR(1), 1, 1, 1, /* 1040 .. 8 KiB */
    FOUR(VM_MEDIUM_PAGE_SLICES), FOUR(VM_MEDIUM_PAGE_SLICES),      /* 10 .. 32 KiB */
    FOUR(VM_MEDIUM_PAGE_SLICES), FOUR(VM_MEDIUM_PAGE_SLICES),      /* 40 .. 128 KiB */
};
_Static_assert(sizeof vm_class_size / sizeof vm_class_size[0] == VM_CLASS_COUNT + 1,
               "one size per class");

/* By 16-byte step up to VM_SMALL_MAX, the smallest class that holds the size: the
 * classes of (1 KiB, 8 KiB] follow no formula. Filled before the first allocation. */
uint8_t vm_small_class[VM_SMALL_MAX / VM_ALIGN + 1];

void vm_sizeclass_init(void) {
  unsigned c = 1;
  for (size_t step = 0; step <= VM_SMALL_MAX / VM_ALIGN; step++) {
    while (vm_class_size[c] < step * VM_ALIGN)
      c++;
    vm_small_class[step] = (uint8_t)c;
  }
}

unsigned vm_class_of_aligned(size_t n, size_t alignment) {
  unsigned c = vm_class_of(vm_align_up(n == 0 ? 1 : n, alignment));
  while (vm_class_size[c] & (alignment - 1)) /* 4368: the next class is aligned */
    c++;
  return c;
}
