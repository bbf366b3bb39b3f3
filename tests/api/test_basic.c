/* The core contract of malloc, free, calloc, malloc_usable_size and reallocarray: results
 * are 16-byte aligned and fully usable, calloc always hands out zeroes, overflowing and
 * impossible requests fail with ENOMEM, and free leaves errno alone. */
#include <errno.h>
#include <malloc.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include "../testutil.h"

/* Sizes passed through a volatile so the compiler neither warns about nor folds requests
 * it can prove too large; results go to a volatile so no allocation is optimised away. */
static volatile size_t opaque_size_max = SIZE_MAX;
static void *volatile allocation_sink;

static int compare_pointers(const void *left, const void *right)
{
    uintptr_t a = (uintptr_t) * (void *const *)left, b = (uintptr_t) * (void *const *)right;
    return (a > b) - (a < b);
}

/* malloc(0) must give a real, distinct block each time, as glibc does: programs use such
 * pointers as unique handles and compare them. */
static void test_malloc_zero_is_unique(void **state)
{
    (void)state;
    enum { COUNT = 1000 };
    static void *blocks[COUNT];
    for (int i = 0; i < COUNT; i++) {
        blocks[i] = malloc(0);
        assert_non_null(blocks[i]);
        assert_true(is_aligned(blocks[i], 16));
    }
    qsort(blocks, COUNT, sizeof blocks[0], compare_pointers);
    for (int i = 1; i < COUNT; i++)
        assert_true(blocks[i - 1] != blocks[i]);
    for (int i = 0; i < COUNT; i++)
        free(blocks[i]);
}

/* Allocates `size` bytes and checks the promises every malloc result makes. */
static void check_one_allocation(size_t size)
{
    unsigned char *block = malloc(size);
    assert_non_null(block);
    if (!is_aligned(block, 16))
        fail_msg("malloc(%zu) = %p is not 16-byte aligned", size, (void *)block);
    size_t usable = malloc_usable_size(block);
    if (usable < size)
        fail_msg("malloc_usable_size = %zu < requested %zu", usable, size);
    /* Every usable byte belongs to the caller: write them all, then read both ends. */
    fill_bytes(block, 0x5C, usable);
    if (usable > 0)
        assert_int_equal(block[0] + block[usable - 1], 2 * 0x5C);
    free(block);
}

static void test_every_size_is_aligned_and_usable(void **state)
{
    (void)state;
    for (size_t size = 0; size <= 4096; size++)
        check_one_allocation(size);
    /* Past the small sizes, visit every power of two and its neighbours up to 64 MiB so each
     * class boundary and the switch to dedicated mappings is crossed from both sides. */
    static const long offsets[] = {-4097, -4096, -17, -16, -1, 0, 1, 15, 16, 4095, 4096};
    for (size_t base = 8 * KiB; base <= 64 * MiB; base *= 2)
        for (size_t i = 0; i < sizeof offsets / sizeof offsets[0]; i++)
            check_one_allocation((size_t)((long)base + offsets[i]));
}

static void test_usable_size_of_null_is_zero(void **state)
{
    (void)state;
    assert_int_equal(malloc_usable_size(NULL), 0);
}

static void test_free_null_is_harmless(void **state)
{
    (void)state;
    free(NULL);
    free(NULL);
    void *block = malloc(32);
    assert_non_null(block);
    free(block);
}

static bool is_all_zero(const unsigned char *bytes, size_t size)
{
    size_t i = 0;
    for (; i < size && !is_aligned(bytes + i, 8); i++)
        if (bytes[i])
            return false;
    for (; i + 8 <= size; i += 8)
        if (*(const uint64_t *)(const void *)(bytes + i))
            return false;
    for (; i < size; i++)
        if (bytes[i])
            return false;
    return true;
}

/* Dirties `count` blocks of `size` bytes with 0xAA and frees them, then callocs the same
 * sizes, so the allocator is likely to hand the dirty memory straight back; every byte
 * calloc returns must still be zero. Repeats `rounds` times, alternating the split of the
 * size between nmemb and size so both multiplication orders are used. */
static void check_calloc_zeroes_reused_memory(size_t size, int count, int rounds)
{
    void *blocks[64];
    assert_true(count <= 64);
    for (int round = 0; round < rounds; round++) {
        for (int i = 0; i < count; i++) {
            blocks[i] = malloc(size);
            assert_non_null(blocks[i]);
            fill_bytes(blocks[i], 0xAA, malloc_usable_size(blocks[i]));
        }
        /* Free in reverse order on odd rounds: LIFO and FIFO reuse both get exercised. */
        for (int i = 0; i < count; i++)
            free(blocks[round & 1 ? count - 1 - i : i]);
        for (int i = 0; i < count; i++) {
            bool split = (round & 1) && size % 8 == 0;
            blocks[i] = split ? calloc(size / 8, 8) : calloc(1, size);
            assert_non_null(blocks[i]);
            if (!is_all_zero(blocks[i], size))
                fail_msg("calloc(%zu) returned dirty memory in round %d", size, round);
        }
        for (int i = 0; i < count; i++) {
            fill_bytes(blocks[i], 0xAA, size);
            free(blocks[i]);
        }
    }
}

static void test_calloc_zeroes_small(void **state)
{
    (void)state;
    static const size_t sizes[] = {1, 8, 16, 24, 48, 100, 128, 500, 1000, 2048, 4000, 8192};
    for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++)
        check_calloc_zeroes_reused_memory(sizes[i], 64, 8);
}

static void test_calloc_zeroes_medium(void **state)
{
    (void)state;
    check_calloc_zeroes_reused_memory(20 * KiB, 32, 6);
    check_calloc_zeroes_reused_memory(100 * KiB, 16, 6);
    check_calloc_zeroes_reused_memory(200 * KiB + 8, 8, 4);
}

static void test_calloc_zeroes_large(void **state)
{
    (void)state;
    check_calloc_zeroes_reused_memory(1 * MiB, 8, 4);
    check_calloc_zeroes_reused_memory(3 * MiB + 24, 4, 4);
}

static void test_calloc_zeroes_huge(void **state)
{
    (void)state;
    check_calloc_zeroes_reused_memory(8 * MiB, 3, 3);
    check_calloc_zeroes_reused_memory(40 * MiB, 2, 3);
}

/* Expects a request that cannot be satisfied: NULL and errno ENOMEM. */
static void expect_enomem(void *result, const char *what)
{
    int saved = errno;
    if (result != NULL) {
        free(result);
        fail_msg("%s succeeded, expected NULL", what);
    }
    if (saved != ENOMEM)
        fail_msg("%s set errno %d, expected ENOMEM", what, saved);
}

static void test_calloc_overflow_fails(void **state)
{
    (void)state;
    size_t max = opaque_size_max;
    struct {
        size_t count, size;
    } cases[] = {
        {max / 2 + 1, 2},       {2, max / 2 + 1},           {max, max},
        {(size_t)1 << 32, (size_t)1 << 32}, {max / 16 + 1, 16}, {16, max / 16 + 1},
        {max, 2},               {3, max / 3 + 1},           {max / 4096 + 1, 4096},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char what[80];
        snprintf(what, sizeof what, "calloc(%zu, %zu)", cases[i].count, cases[i].size);
        errno = 0;
        allocation_sink = calloc(cases[i].count, cases[i].size);
        expect_enomem(allocation_sink, what);
    }
    /* Both factors above 2^12 but a product that fits: this must not be taken for overflow. */
    unsigned char *block = calloc((size_t)1 << 12, ((size_t)1 << 12) + 8);
    assert_non_null(block);
    assert_true(is_all_zero(block, ((size_t)1 << 24) + (1 << 15)));
    free(block);
}

static void test_impossible_malloc_fails(void **state)
{
    (void)state;
    size_t max = opaque_size_max;
    size_t impossible[] = {max, max - 1, max - 4096, max / 2 + 1, (size_t)PTRDIFF_MAX + 1,
                           (size_t)PTRDIFF_MAX + 4097};
    for (size_t i = 0; i < sizeof impossible / sizeof impossible[0]; i++) {
        char what[64];
        snprintf(what, sizeof what, "malloc(%zu)", impossible[i]);
        errno = 0;
        allocation_sink = malloc(impossible[i]);
        expect_enomem(allocation_sink, what);
    }
    /* The heap still works after refusing. */
    check_one_allocation(100);
}

/* A failed reallocarray leaves the block alive; GCC cannot know it failed and would warn
 * about every later use of the block. */
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wuse-after-free"
static void test_reallocarray_overflow_keeps_block(void **state)
{
    (void)state;
    size_t max = opaque_size_max;
    enum { SIZE = 100 };
    unsigned char *block = malloc(SIZE);
    assert_non_null(block);
    pattern_fill(block, SIZE, 42);

    errno = 0;
    allocation_sink = reallocarray(block, max / 2 + 1, 2);
    expect_enomem(allocation_sink, "reallocarray(p, SIZE_MAX/2+1, 2)");
    errno = 0;
    allocation_sink = reallocarray(block, max, max);
    expect_enomem(allocation_sink, "reallocarray(p, SIZE_MAX, SIZE_MAX)");
    assert_int_equal(pattern_mismatch(block, SIZE, SIZE, 42), SIZE_MAX);

    errno = 0;
    allocation_sink = reallocarray(NULL, max >> 30, max >> 30);
    expect_enomem(allocation_sink, "reallocarray(NULL, 2^34, 2^34)");

    /* A product that fits behaves like realloc and keeps the contents. */
    unsigned char *grown = reallocarray(block, 20, 10);
    assert_non_null(grown);
    assert_true(malloc_usable_size(grown) >= 200);
    assert_int_equal(pattern_mismatch(grown, SIZE, SIZE, 42), SIZE_MAX);
    free(grown);
}
#pragma GCC diagnostic pop

/* free must preserve errno (POSIX 2024, and glibc since 2.33): code like
 * `if (write(...) < 0) { free(buf); return errno; }` depends on it, and unmapping a large
 * block is exactly where a careless free would clobber it. */
static void test_free_preserves_errno(void **state)
{
    (void)state;
    static const size_t sizes[] = {0,        16,       1000,     20 * KiB, 100 * KiB,
                                   1 * MiB,  8 * MiB,  40 * MiB, 64 * MiB + 1};
    for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
        void *block = malloc(sizes[i]);
        assert_non_null(block);
        fill_bytes(block, 1, sizes[i] < 4096 ? sizes[i] : 4096);
        errno = 1234;
        free(block);
        if (errno != 1234)
            fail_msg("free of a %zu-byte block changed errno to %d", sizes[i], errno);
    }
    errno = 1234;
    free(NULL);
    assert_int_equal(errno, 1234);

    /* Also when many blocks are released together, which may return memory to the OS. */
    void *blocks[256];
    for (int i = 0; i < 256; i++) {
        blocks[i] = malloc((size_t)(i + 1) * 997);
        assert_non_null(blocks[i]);
    }
    for (int i = 0; i < 256; i++) {
        errno = 1234;
        free(blocks[i]);
        assert_int_equal(errno, 1234);
    }
}

/* Blocks come back out in address order once every block of their page was freed, not
 * in the (here shuffled) order of the frees: neighbours in time are neighbours in
 * memory, which is what caches and prefetchers reward. In a fresh child, so the class's
 * page is the only one. */
static int reuse_in_address_order_child(void *unused)
{
    (void)unused;
    enum { COUNT = 250, SIZE = 200 }; /* a 64 KiB page of 224-byte blocks holds 292 */
    static unsigned char *blocks[COUNT];
    uint64_t rng = random_seed(7);
    for (int round = 0; round < 3; round++) {
        for (int i = 0; i < COUNT; i++)
            if ((blocks[i] = malloc(SIZE)) == NULL)
                return 2;
        size_t stride = malloc_usable_size(blocks[0]);
        int ascending = 0;
        for (int i = 1; i < COUNT; i++)
            ascending += blocks[i] == blocks[i - 1] + stride;
        if (round > 0 && ascending < COUNT * 9 / 10) {
            fprintf(stderr, "round %d: %d of %d allocations follow the one before\n", round,
                    ascending, COUNT - 1);
            return 3;
        }
        for (int i = COUNT - 1; i > 0; i--) { /* free in a shuffled order */
            int j = (int)random_below(&rng, (uint64_t)i + 1);
            unsigned char *t = blocks[i];
            blocks[i] = blocks[j];
            blocks[j] = t;
        }
        for (int i = 0; i < COUNT; i++)
            free(blocks[i]);
    }
    return 0;
}

static void test_reuse_in_address_order(void **state)
{
    (void)state;
    assert_int_equal(run_forked(reuse_in_address_order_child, NULL), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_malloc_zero_is_unique),
        cmocka_unit_test(test_reuse_in_address_order),
        cmocka_unit_test(test_every_size_is_aligned_and_usable),
        cmocka_unit_test(test_usable_size_of_null_is_zero),
        cmocka_unit_test(test_free_null_is_harmless),
        cmocka_unit_test(test_calloc_zeroes_small),
        cmocka_unit_test(test_calloc_zeroes_medium),
        cmocka_unit_test(test_calloc_zeroes_large),
        cmocka_unit_test(test_calloc_zeroes_huge),
        cmocka_unit_test(test_calloc_overflow_fails),
        cmocka_unit_test(test_impossible_malloc_fails),
        cmocka_unit_test(test_reallocarray_overflow_keeps_block),
        cmocka_unit_test(test_free_preserves_errno),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
