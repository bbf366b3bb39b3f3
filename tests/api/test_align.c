/* The aligned family: posix_memalign, aligned_alloc, memalign, valloc and pvalloc return
 * blocks at the requested alignment that hold the requested size, reject alignments they
 * cannot honour in the way glibc does, and free_sized / free_aligned_sized accept them. */
#include <errno.h>
#include <malloc.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include "../testutil.h"

/* C23 names that older C libraries lack: weak, so the test still links there and skips. */
extern void free_sized(void *, size_t) __attribute__((weak));
extern void free_aligned_sized(void *, size_t, size_t) __attribute__((weak));

/* A pointer value no allocator returns, to see whether a failed call wrote its output. */
#define SENTINEL ((void *)(uintptr_t)0xDEADBEE0)

static volatile size_t opaque_zero = 0;

/* The alignments every function is tried with: each power of two from a pointer's size
 * to 1 MiB, then two beyond the usual segment sizes. */
static size_t alignments[32];
static size_t alignment_count;

static int collect_alignments(void **state)
{
    (void)state;
    alignment_count = 0;
    for (size_t alignment = sizeof(void *); alignment <= 1 * MiB; alignment *= 2)
        alignments[alignment_count++] = alignment;
    alignments[alignment_count++] = 4 * MiB;
    alignments[alignment_count++] = 16 * MiB;
    return 0;
}

/* The sizes tried at one alignment: tiny, around the alignment itself, and large. */
static size_t sizes_for_alignment(size_t alignment, size_t sizes[10])
{
    size_t list[10] = {1,         7,         16,           100,    alignment - 1,
                       alignment, alignment + 1, 3 * alignment, 100000, 5 * MiB};
    memcpy(sizes, list, sizeof list);
    return 10;
}

/* Checks one successful aligned allocation and frees it. */
static void check_aligned_block(void *block, size_t alignment, size_t size, const char *what)
{
    if (block == NULL)
        fail_msg("%s(%zu, %zu) returned NULL", what, alignment, size);
    if (!is_aligned(block, alignment))
        fail_msg("%s(%zu, %zu) = %p is misaligned", what, alignment, size, block);
    size_t usable = malloc_usable_size(block);
    if (usable < size)
        fail_msg("%s(%zu, %zu): usable size %zu too small", what, alignment, size, usable);
    fill_bytes(block, 0x3C, size);
    /* Also the slack past the request: malloc_usable_size promises it is ours too. */
    fill_bytes((char *)block + size, 0x3D, usable - size);
    free(block);
}

static void test_posix_memalign_every_alignment(void **state)
{
    (void)state;
    for (size_t a = 0; a < alignment_count; a++) {
        size_t sizes[10], count = sizes_for_alignment(alignments[a], sizes);
        for (size_t s = 0; s < count; s++) {
            void *block = SENTINEL;
            int error = posix_memalign(&block, alignments[a], sizes[s]);
            if (error != 0)
                fail_msg("posix_memalign(%zu, %zu) failed with %d", alignments[a], sizes[s],
                         error);
            check_aligned_block(block, alignments[a], sizes[s], "posix_memalign");
        }
    }
}

/* Aligned blocks taken among the freed blocks of a busy class, interleaved with plain
 * ones of the same sizes: each aligned, and none overlapping a live block (every live
 * block keeps its own byte until the end). */
static void test_aligned_blocks_among_freed_ones(void **state)
{
    (void)state;
    enum { COUNT = 600 };
    static const size_t alignments_here[] = {32, 64, 128, 256, 512, 1024};
    static unsigned char *blocks[COUNT];
    static size_t sizes[COUNT];
    for (size_t a = 0; a < sizeof alignments_here / sizeof alignments_here[0]; a++) {
        size_t alignment = alignments_here[a];
        for (size_t i = 0; i < COUNT; i++) {
            sizes[i] = 1 + (i * 37) % alignment;
            blocks[i] = malloc(sizes[i]);
            assert_non_null(blocks[i]);
        }
        for (size_t i = 0; i < COUNT; i += 2)
            free(blocks[i]);
        for (size_t i = 0; i < COUNT; i += 2) {
            blocks[i] = aligned_alloc(alignment, sizes[i]);
            if (blocks[i] == NULL || !is_aligned(blocks[i], alignment))
                fail_msg("aligned_alloc(%zu, %zu) = %p", alignment, sizes[i], (void *)blocks[i]);
        }
        for (size_t i = 0; i < COUNT; i++)
            fill_bytes(blocks[i], (unsigned char)i, sizes[i]);
        for (size_t i = 0; i < COUNT; i++) {
            for (size_t b = 0; b < sizes[i]; b++)
                if (blocks[i][b] != (unsigned char)i)
                    fail_msg("block %zu (%zu B, alignment %zu) overwritten at byte %zu", i,
                             sizes[i], alignment, b);
            free(blocks[i]);
        }
    }
}

static void test_posix_memalign_size_zero(void **state)
{
    (void)state;
    for (size_t a = 0; a < alignment_count; a++) {
        void *block = SENTINEL;
        assert_int_equal(posix_memalign(&block, alignments[a], 0), 0);
        /* POSIX allows NULL or a unique pointer for size 0; either must be freeable. */
        assert_true(block != SENTINEL);
        assert_true(block == NULL || is_aligned(block, alignments[a]));
        free(block);
    }
}

/* posix_memalign requires a power of two that is a multiple of sizeof(void *); anything
 * else is EINVAL, and a failed call must leave *memptr as it was (POSIX). */
static void test_posix_memalign_rejects_bad_alignment(void **state)
{
    (void)state;
    const size_t bad[] = {0,  1, 2, 3, sizeof(void *) / 2, 12, 24, 48, 4095, 4097,
                          3 * sizeof(void *), SIZE_MAX, SIZE_MAX / 2};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        void *block = SENTINEL;
        int error = posix_memalign(&block, bad[i], 64);
        if (error != EINVAL)
            fail_msg("posix_memalign(%zu, 64) returned %d, expected EINVAL", bad[i], error);
        if (block != SENTINEL)
            fail_msg("posix_memalign(%zu, 64) wrote %p to its output on failure", bad[i],
                     block);
    }
}

/* A valid but unsatisfiable request is ENOMEM, again leaving the output alone. */
static void test_posix_memalign_impossible_is_enomem(void **state)
{
    (void)state;
    struct {
        size_t alignment, size;
    } impossible[] = {
        {(size_t)1 << 62, 16}, {(size_t)1 << 63, 16}, {64, SIZE_MAX - opaque_zero},
        {4096, SIZE_MAX - 4096 - opaque_zero}, {1 * MiB, (size_t)PTRDIFF_MAX + 1},
    };
    for (size_t i = 0; i < sizeof impossible / sizeof impossible[0]; i++) {
        void *block = SENTINEL;
        int error = posix_memalign(&block, impossible[i].alignment, impossible[i].size);
        if (error != ENOMEM)
            fail_msg("posix_memalign(%zu, %zu) returned %d, expected ENOMEM",
                     impossible[i].alignment, impossible[i].size, error);
        assert_ptr_equal(block, SENTINEL);
    }
}

static void test_aligned_alloc_every_alignment(void **state)
{
    (void)state;
    for (size_t a = 0; a < alignment_count; a++) {
        size_t sizes[10], count = sizes_for_alignment(alignments[a], sizes);
        for (size_t s = 0; s < count; s++)
            check_aligned_block(aligned_alloc(alignments[a], sizes[s]), alignments[a],
                                sizes[s], "aligned_alloc");
    }
    /* Alignments below a pointer's size are valid for aligned_alloc and memalign. */
    for (size_t alignment = 1; alignment < sizeof(void *); alignment *= 2)
        check_aligned_block(aligned_alloc(alignment, 40), alignment, 40, "aligned_alloc");
}

/* The smallest power of two at or above `value`. */
static size_t power_of_two_ceiling(size_t value)
{
    size_t power = 1;
    while (power < value)
        power *= 2;
    return power;
}

/* aligned_alloc with an alignment that is not a power of two fails with EINVAL, as in
 * glibc since 2.38. Older glibc rounds the alignment up instead; when the tests are run on
 * such a C library (VMALLOC_TEST_ON_GLIBC set) that answer is accepted too. */
static void test_aligned_alloc_rejects_bad_alignment(void **state)
{
    (void)state;
    bool lenient = getenv("VMALLOC_TEST_ON_GLIBC") != NULL;
    const size_t bad[] = {0, 3, 24, 48, 1000, 4095, 3 * MiB};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        errno = 0;
        void *block = aligned_alloc(bad[i], 64);
        int error = errno;
        if (block == NULL && error == EINVAL)
            continue;
        if (lenient && block != NULL && is_aligned(block, power_of_two_ceiling(bad[i]))) {
            free(block);
            continue;
        }
        free(block);
        fail_msg("aligned_alloc(%zu, 64) = %p errno %d, expected NULL and EINVAL", bad[i],
                 block, error);
    }
}

static void test_memalign_every_alignment(void **state)
{
    (void)state;
    for (size_t a = 0; a < alignment_count; a++) {
        size_t sizes[10], count = sizes_for_alignment(alignments[a], sizes);
        for (size_t s = 0; s < count; s++)
            check_aligned_block(memalign(alignments[a], sizes[s]), alignments[a], sizes[s],
                                "memalign");
    }
    for (size_t alignment = 1; alignment < sizeof(void *); alignment *= 2)
        check_aligned_block(memalign(alignment, 40), alignment, 40, "memalign");
}

/* glibc's memalign rounds an alignment that is not a power of two up to the next one (and
 * treats 0 like malloc) rather than failing; failing with EINVAL is also acceptable. What
 * is never acceptable is a pointer that misses the alignment the caller asked for. */
static void test_memalign_odd_alignment(void **state)
{
    (void)state;
    const size_t odd[] = {0, 3, 24, 48, 1000, 4095, 3 * MiB};
    for (size_t i = 0; i < sizeof odd / sizeof odd[0]; i++) {
        errno = 0;
        void *block = memalign(odd[i], 64);
        if (block == NULL) {
            assert_int_equal(errno, EINVAL);
            continue;
        }
        if (!is_aligned(block, power_of_two_ceiling(odd[i])))
            fail_msg("memalign(%zu, 64) = %p is misaligned", odd[i], block);
        fill_bytes(block, 1, 64);
        free(block);
    }
}

static void test_aligned_impossible_sizes_fail(void **state)
{
    (void)state;
    size_t huge = SIZE_MAX - opaque_zero;
    errno = 0;
    void *block = aligned_alloc(64, huge);
    assert_null(block);
    assert_int_equal(errno, ENOMEM);
    errno = 0;
    block = memalign(4096, huge - 8192);
    assert_null(block);
    assert_int_equal(errno, ENOMEM);
    errno = 0;
    block = valloc(huge);
    assert_null(block);
    assert_int_equal(errno, ENOMEM);
}

static void test_valloc_is_page_aligned(void **state)
{
    (void)state;
    size_t page = (size_t)sysconf(_SC_PAGESIZE);
    const size_t sizes[] = {1, 100, page - 1, page, page + 1, 3 * page, 1 * MiB + 3, 9 * MiB};
    for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++)
        check_aligned_block(valloc(sizes[i]), page, sizes[i], "valloc");
    void *block = valloc(0);
    assert_non_null(block);
    assert_true(is_aligned(block, page));
    free(block);
}

/* pvalloc rounds the size up to whole pages, and the caller may use all of them. */
static void test_pvalloc_rounds_to_pages(void **state)
{
    (void)state;
    size_t page = (size_t)sysconf(_SC_PAGESIZE);
    const size_t sizes[] = {1, 100, page - 1, page, page + 1, 3 * page + 5, 1 * MiB + 1,
                            9 * MiB + 17};
    for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
        size_t rounded = (sizes[i] + page - 1) / page * page;
        void *block = pvalloc(sizes[i]);
        assert_non_null(block);
        if (!is_aligned(block, page))
            fail_msg("pvalloc(%zu) = %p is not page aligned", sizes[i], block);
        if (malloc_usable_size(block) < rounded)
            fail_msg("pvalloc(%zu): usable size %zu, expected at least %zu", sizes[i],
                     malloc_usable_size(block), rounded);
        fill_bytes(block, 0x7E, rounded);
        free(block);
    }
    void *block = pvalloc(0);
    assert_non_null(block);
    assert_true(is_aligned(block, page));
    free(block);
    /* Rounding a size near SIZE_MAX up to a page must not wrap around to a small one. */
    errno = 0;
    block = pvalloc(SIZE_MAX - opaque_zero - 100);
    assert_null(block);
    assert_int_equal(errno, ENOMEM);
}

/* A huge block at a big alignment sits far into its mapping; one that reuses a freed
 * mapping may get the mapping whole (room to grow in) only while that is at most four
 * times the block, counted without the alignment's slack in front. The freed mapping
 * (the only one kept: trim empties the cache first) steps through sizes so that some fit
 * with little room to spare and some are far too big. */
static void test_aligned_huge_block_reusing_a_freed_mapping(void **state)
{
    (void)state;
    assert_int_equal(mallopt(M_MMAP_THRESHOLD, 128 << 10), 1);
    size_t size = 138720, alignment = 2 << 20, page = (size_t)sysconf(_SC_PAGESIZE);
    size_t most = 4 * ((size + page - 1) / page * page);
    for (size_t freed = alignment + size; freed < alignment + 6 * size; freed += 4096) {
        malloc_trim(0);
        void *volatile mapping = malloc(freed); /* volatile: the pair is not optimised away */
        free(mapping);
        void *block = aligned_alloc(alignment, size);
        size_t usable = block != NULL ? malloc_usable_size(block) : 0;
        if (usable > most)
            fail_msg("aligned_alloc(%zu, %zu) after freeing %zu bytes: %zu usable", alignment,
                     size, freed, usable);
        check_aligned_block(block, alignment, size, "aligned_alloc after a huge free");
    }
    assert_int_equal(mallopt(M_MMAP_THRESHOLD, 1 << 20), 1);
}

static void test_free_sized(void **state)
{
    (void)state;
    if (free_sized == NULL)
        skip();
    const size_t sizes[] = {0, 1, 16, 100, 1000, 4096, 20 * KiB, 100 * KiB, 1 * MiB, 9 * MiB};
    for (int round = 0; round < 3; round++)
        for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
            void *block = round == 1 ? calloc(1, sizes[i]) : malloc(sizes[i]);
            assert_non_null(block);
            fill_bytes(block, 0x11, sizes[i]);
            errno = 1234;
            free_sized(block, sizes[i]);
            assert_int_equal(errno, 1234);
        }
    free_sized(NULL, 0);
    free_sized(NULL, 100);
    /* The size of a reallocated block is the last size asked for. */
    void *block = malloc(10);
    assert_non_null(block);
    void *grown = realloc(block, 5000);
    assert_non_null(grown);
    free_sized(grown, 5000);
}

static void test_free_aligned_sized(void **state)
{
    (void)state;
    if (free_aligned_sized == NULL)
        skip();
    for (size_t a = 0; a < alignment_count; a++) {
        size_t sizes[10], count = sizes_for_alignment(alignments[a], sizes);
        for (size_t s = 0; s < count; s++) {
            /* C23 pairs free_aligned_sized with aligned_alloc only. */
            void *block = aligned_alloc(alignments[a], sizes[s]);
            assert_non_null(block);
            fill_bytes(block, 0x22, sizes[s]);
            errno = 1234;
            free_aligned_sized(block, alignments[a], sizes[s]);
            assert_int_equal(errno, 1234);
        }
    }
    free_aligned_sized(NULL, 64, 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_posix_memalign_every_alignment),
        cmocka_unit_test(test_aligned_blocks_among_freed_ones),
        cmocka_unit_test(test_posix_memalign_size_zero),
        cmocka_unit_test(test_posix_memalign_rejects_bad_alignment),
        cmocka_unit_test(test_posix_memalign_impossible_is_enomem),
        cmocka_unit_test(test_aligned_alloc_every_alignment),
        cmocka_unit_test(test_aligned_alloc_rejects_bad_alignment),
        cmocka_unit_test(test_memalign_every_alignment),
        cmocka_unit_test(test_memalign_odd_alignment),
        cmocka_unit_test(test_aligned_impossible_sizes_fail),
        cmocka_unit_test(test_valloc_is_page_aligned),
        cmocka_unit_test(test_pvalloc_rounds_to_pages),
        cmocka_unit_test(test_aligned_huge_block_reusing_a_freed_mapping),
        cmocka_unit_test(test_free_sized),
        cmocka_unit_test(test_free_aligned_sized),
    };
    return cmocka_run_group_tests(tests, collect_alignments, NULL);
}
