/* The size classes. Below 128 bytes they step by 16 (the alignment every block needs);
 * above, each doubling (2^k, 2^(k+1)] has four classes, 2^(k-2) apart, except those of
 * (1 KiB, 8 KiB], which have eight, 2^(k-3) apart, and a ninth at 2^k + 2^(k-4): that is
 * where programs put a power of two plus a header (a database's pages and records,
 * network buffers: sqlite asks for 1032, 4104 and 4368 bytes), which four classes per
 * doubling would round up by nearly a quarter, and eight by up to an eighth (1032 ->
 * 1152; with the ninth, 1088). So a request of n bytes gets a block of at most n + 15
 * bytes up to 128, and above 128 the block exceeds the request by less than a quarter of
 * its size (an eighth between 1 and 8 KiB): worst-case internal waste 20% (129 -> 160).
 * Every class size above 128 is a multiple of its step, which makes any alignment up to
 * the page's own a matter of rounding the request (see alloc.c).
 * Pages: classes up to 8 KiB use one 64 KiB slice (at least 8 blocks); larger classes use
 * 576 KiB pages: at least 4 blocks of the 128 KiB class, and 7 pages use all 63 free
 * slices of a segment (512 KiB pages would leave 7 slices of every segment unused). */
#include "internal.h"

#define S(k, i) ((1u << (k)) + (i) * (1u << ((k)-2)))
#define DOUBLING(k) S(k, 1), S(k, 2), S(k, 3), S(k, 4)
#define E(k, i) ((1u << (k)) + (i) * (1u << ((k)-3)))
#define FINE_DOUBLING(k)                                                                   \
  ((1u << (k)) + (1u << ((k)-4))), E(k, 1), E(k, 2), E(k, 3), E(k, 4), E(k, 5), E(k, 6),   \
      E(k, 7), E(k, 8)

const uint32_t vm_class_size[VM_CLASS_COUNT + 1] = {
    0,           16,          32,          48,          64,          80,         96,
    112,         128,         DOUBLING(7), DOUBLING(8), DOUBLING(9),
    FINE_DOUBLING(10), FINE_DOUBLING(11), FINE_DOUBLING(12), DOUBLING(13), DOUBLING(14),
    DOUBLING(15), DOUBLING(16),
};

#define FOUR(x) x, x, x, x
const uint8_t vm_class_slices[VM_CLASS_COUNT + 1] = {
    0, 1, 1, 1, 1, 1, 1, 1, 1,                                     /* 16 .. 128 */
    FOUR(1), FOUR(1), FOUR(1),                                     /* 160 .. 1 KiB */
    FOUR(1), FOUR(1), FOUR(1), FOUR(1), FOUR(1), FOUR(1), 1, 1, 1, /* 1088 .. 8 KiB */
    FOUR(VM_MEDIUM_PAGE_SLICES), FOUR(VM_MEDIUM_PAGE_SLICES),      /* 10 .. 32 KiB */
    FOUR(VM_MEDIUM_PAGE_SLICES), FOUR(VM_MEDIUM_PAGE_SLICES),      /* 40 .. 128 KiB */
};
_Static_assert(sizeof vm_class_size / sizeof vm_class_size[0] == VM_CLASS_COUNT + 1,
               "one size per class");
