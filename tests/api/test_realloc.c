/* realloc keeps the contents of a block while it moves between size classes, page runs and
 * dedicated mappings in either direction, and its edge cases behave as in glibc. */
#include <errno.h>
#include <malloc.h>
#include <pthread.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/resource.h>
#include <setjmp.h>
#include <cmocka.h>

#include "../testutil.h"
#include "vmalloc.h"

static volatile size_t opaque_size_max = SIZE_MAX;

/* Resizes a block whose first `*size` bytes carry the pattern of `seed` to `new_size`,
 * checks the preserved prefix byte for byte, and patterns whatever is new. */
static unsigned char *resize_and_check(unsigned char *block, size_t *size, size_t new_size,
                                       uint64_t seed)
{
    unsigned char *moved = realloc(block, new_size);
    if (moved == NULL)
        fail_msg("realloc(%p, %zu) from %zu failed", (void *)block, new_size, *size);
    if (!is_aligned(moved, 16))
        fail_msg("realloc to %zu returned misaligned %p", new_size, (void *)moved);
    if (malloc_usable_size(moved) < new_size)
        fail_msg("realloc to %zu: usable size %zu", new_size, malloc_usable_size(moved));
    size_t kept = *size < new_size ? *size : new_size;
    size_t bad = pattern_mismatch_range(moved, 0, kept, seed);
    if (bad != SIZE_MAX)
        fail_msg("realloc %zu -> %zu lost byte %zu (moved %p -> %p)", *size, new_size, bad,
                 (void *)block, (void *)moved);
    if (new_size > kept)
        pattern_fill_range(moved, kept, new_size, seed);
    *size = new_size;
    return moved;
}

/* Every small size, one byte at a time, up and back down: crosses each small class
 * boundary in both directions, in place and by moving. */
static void test_grow_and_shrink_by_one_byte(void **state)
{
    (void)state;
    size_t size = 1;
    unsigned char *block = malloc(size);
    assert_non_null(block);
    pattern_fill_range(block, 0, size, 7);
    for (size_t next = 2; next <= 2048; next++)
        block = resize_and_check(block, &size, next, 7);
    for (size_t next = 2047; next >= 1; next--)
        block = resize_and_check(block, &size, next, 7);
    free(block);
}

/* Powers of two from 4 KiB to 64 MiB and back: through the medium classes, page runs and
 * dedicated mappings, where growth may happen in place or by remapping. */
static void test_double_up_and_halve_down(void **state)
{
    (void)state;
    size_t size = 4 * KiB;
    unsigned char *block = malloc(size);
    assert_non_null(block);
    pattern_fill_range(block, 0, size, 11);
    for (size_t next = 8 * KiB; next <= 64 * MiB; next *= 2)
        block = resize_and_check(block, &size, next, 11);
    for (size_t next = 32 * MiB; next >= 4 * KiB; next /= 2)
        block = resize_and_check(block, &size, next, 11);
    /* Odd sizes, so copies that round to pages or words are caught at the tail. */
    for (size_t next = 5 * KiB + 3; next <= 20 * MiB; next = next * 3 + 1)
        block = resize_and_check(block, &size, next, 11);
    free(block);
}

/* Straight jumps between the extremes, the moves most likely to pick the wrong copy size. */
static void test_jumps_into_and_out_of_huge(void **state)
{
    (void)state;
    static const size_t chain[] = {
        100,     3 * MiB, 70 * MiB,      1 * KiB,  40 * MiB, 39 * MiB + 5, 100 * MiB,
        8 * MiB, 24,      16 * MiB + 1,  200 * KiB, 1,       9 * MiB,      0x10001,
    };
    size_t size = chain[0];
    unsigned char *block = malloc(size);
    assert_non_null(block);
    pattern_fill_range(block, 0, size, 13);
    for (size_t i = 1; i < sizeof chain / sizeof chain[0]; i++)
        block = resize_and_check(block, &size, chain[i], 13);
    free(block);
}

/* Blocks that started aligned keep their contents when resized (the result only needs the
 * default alignment). */
static void test_realloc_of_aligned_blocks(void **state)
{
    (void)state;
    static const size_t alignments[] = {64, 4096, 64 * KiB, 2 * MiB};
    static const size_t sizes[] = {10, 5000, 300 * KiB, 12 * MiB, 33};
    for (size_t a = 0; a < sizeof alignments / sizeof alignments[0]; a++) {
        void *start = NULL;
        assert_int_equal(posix_memalign(&start, alignments[a], 200), 0);
        unsigned char *block = start;
        size_t size = 200;
        pattern_fill_range(block, 0, size, 17 + a);
        for (size_t s = 0; s < sizeof sizes / sizeof sizes[0]; s++)
            block = resize_and_check(block, &size, sizes[s], 17 + a);
        free(block);
    }
}

static void test_realloc_null_is_malloc(void **state)
{
    (void)state;
    static const size_t sizes[] = {0, 1, 24, 1000, 40 * KiB, 1 * MiB, 12 * MiB};
    for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
        unsigned char *block = realloc(NULL, sizes[i]);
        assert_non_null(block);
        assert_true(is_aligned(block, 16));
        assert_true(malloc_usable_size(block) >= sizes[i]);
        pattern_fill_range(block, 0, sizes[i], 19);
        assert_int_equal(pattern_mismatch_range(block, 0, sizes[i], 19), SIZE_MAX);
        free(block);
    }
}

/* realloc(p, 0) frees p and returns NULL. That is glibc's behaviour (C17 leaves it to the
 * implementation and C23 makes it undefined); vmalloc follows glibc because programs
 * written against it rely on getting NULL back and on the block being gone. Done a few
 * thousand times on large blocks, so a leak would show as hundreds of MiB still in use. */
static void test_realloc_to_zero_frees(void **state)
{
    (void)state;
    struct mallinfo2 before = mallinfo2();
    for (int i = 0; i < 2000; i++) {
        size_t size = (i % 2) ? 512 * KiB : (size_t)(i + 1) * 64;
        unsigned char *block = malloc(size);
        assert_non_null(block);
        fill_bytes(block, 0x44, size < 4096 ? size : 4096);
        assert_null(realloc(block, 0));
    }
    struct mallinfo2 after = mallinfo2();
    size_t used_before = before.uordblks + before.hblkhd;
    size_t used_after = after.uordblks + after.hblkhd;
    if (used_after > used_before + 64 * MiB)
        fail_msg("in-use bytes grew from %zu to %zu: realloc(p, 0) did not free",
                 used_before, used_after);
}

/* A failed realloc leaves the original alive and intact; GCC cannot know that it failed and
 * would warn about each later use of the block. */
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wuse-after-free"
static void test_impossible_realloc_keeps_block(void **state)
{
    (void)state;
    size_t max = opaque_size_max;
    static const size_t sizes[] = {1, 100, 5000, 300 * KiB, 9 * MiB};
    const size_t impossible[] = {max, max - 4096, (size_t)PTRDIFF_MAX + 1, max / 2 + 4096};
    for (size_t s = 0; s < sizeof sizes / sizeof sizes[0]; s++) {
        unsigned char *block = malloc(sizes[s]);
        assert_non_null(block);
        pattern_fill_range(block, 0, sizes[s], 23);
        for (size_t i = 0; i < sizeof impossible / sizeof impossible[0]; i++) {
            errno = 0;
            void *result = realloc(block, impossible[i]);
            int error = errno;
            if (result != NULL)
                fail_msg("realloc(%zu-byte block, %zu) succeeded", sizes[s], impossible[i]);
            if (error != ENOMEM)
                fail_msg("realloc(%zu-byte block, %zu) set errno %d, expected ENOMEM",
                         sizes[s], impossible[i], error);
            assert_int_equal(pattern_mismatch_range(block, 0, sizes[s], 23), SIZE_MAX);
            assert_true(malloc_usable_size(block) >= sizes[s]);
        }
        /* Still a live, resizable block. */
        size_t size = sizes[s];
        block = resize_and_check(block, &size, sizes[s] * 2, 23);
        free(block);
    }
    errno = 0;
    assert_null(realloc(NULL, max));
    assert_int_equal(errno, ENOMEM);
}
#pragma GCC diagnostic pop

/* A large block grows into the free slices after it without moving; once another block
 * sits there, it moves, contents intact. A fresh thread starts on fresh slices. */
static void *grow_large_block(void *arg)
{
    (void)arg;
    size_t size = 200 << 10;
    unsigned char *block = malloc(size);
    assert_non_null(block);
    pattern_fill_range(block, 0, size, 7);
    /* up to 768 KiB: large blocks (VMALLOC_MMAP_THRESHOLD is 1 MiB), with room to grow */
    for (size_t n = 256 << 10; n <= (768 << 10); n += 64 << 10) {
        unsigned char *before = block;
        block = resize_and_check(block, &size, n, 7);
        if (block != before)
            fail_msg("realloc to %zu moved a large block with free slices after it", n);
    }
    unsigned char *neighbour = malloc(200 << 10);
    assert_non_null(neighbour);
    unsigned char *before = block;
    block = resize_and_check(block, &size, size + (192 << 10), 7);
    if (block == before && neighbour < block + size && neighbour >= before)
        fail_msg("realloc grew a large block over its neighbour %p", (void *)neighbour);
    free(neighbour);
    free(block);
    return NULL;
}

static void test_large_block_grows_in_place(void **state)
{
    (void)state;
    pthread_t thread;
    assert_int_equal(pthread_create(&thread, NULL, grow_large_block, NULL), 0);
    assert_int_equal(pthread_join(thread, NULL), 0);
}

static size_t mremap_calls(void)
{
    vmalloc_stats_t stats = {.size = sizeof stats};
    assert_int_equal(vmalloc_stats_get(&stats), 0);
    return stats.mremap_calls;
}

/* A huge block appended to a KiB at a time grows by an eighth of its size at a time:
 * a few system calls, not one per page, and every byte kept. */
static void test_huge_block_grown_a_little_at_a_time(void **state)
{
    (void)state;
    size_t size = 3 << 20;
    unsigned char *block = malloc(size);
    assert_non_null(block);
    pattern_fill_range(block, 0, size, 9);
    size_t calls_before = mremap_calls();
    while (size < (4 << 20))
        block = resize_and_check(block, &size, size + 1024, 9);
    size_t calls = mremap_calls() - calls_before;
    if (calls > 8)
        fail_msg("growing 3 MiB to 4 MiB by 1 KiB steps made %zu mremap calls", calls);
    free(block);
}

/* A huge block that came in a bigger freed mapping grows into the rest of it where it is,
 * with no system call (those pages may still be resident); shrinking gives room back. */
static void test_huge_block_grows_into_its_reused_mapping(void **state)
{
    (void)state;
    malloc_trim(0); /* no other freed mapping to be given instead */
    unsigned char *old = malloc(12 * MiB);
    assert_non_null(old);
    fill_bytes(old, 0x33, 12 * MiB);
    free(old);
    size_t size = 4 * MiB;
    unsigned char *block = malloc(size);
    assert_non_null(block);
    size_t room = malloc_usable_size(block);
    if (room < 12 * MiB)
        fail_msg("a 4 MiB block in a freed 12 MiB mapping has only %zu bytes", room);
    pattern_fill_range(block, 0, size, 31);
    size_t calls_before = mremap_calls();
    while (size + 64 * KiB <= room) {
        unsigned char *grown = resize_and_check(block, &size, size + 64 * KiB, 31);
        assert_ptr_equal(grown, block);
        assert_int_equal(malloc_usable_size(block), room);
    }
    assert_int_equal(mremap_calls() - calls_before, 0);
    block = resize_and_check(block, &size, 2 * MiB, 31);
    if (malloc_usable_size(block) > 3 * MiB)
        fail_msg("shrunk to 2 MiB, the block still holds %zu bytes", malloc_usable_size(block));
    free(block);
}

static long minor_faults(void)
{
    struct rusage usage;
    getrusage(RUSAGE_SELF, &usage);
    return usage.ru_minflt;
}

/* A 3 MiB block, its bytes patterned with `seed`, and beside it a freed 6 MiB one that
 * had one byte in every `stride` written (its address in *freed). */
static unsigned char *block_beside_freed_mapping(size_t stride, uint64_t seed,
                                                 unsigned char **freed)
{
    malloc_trim(0); /* no other freed mapping to be given instead */
    unsigned char *block = malloc(3 * MiB);
    *freed = malloc(6 * MiB);
    assert_non_null(block);
    assert_non_null(*freed);
    pattern_fill_range(block, 0, 3 * MiB, seed);
    for (size_t offset = 0; offset < 6 * MiB; offset += stride)
        (*freed)[offset] = 1;
    free(*freed);
    return block;
}

/* A huge block that grows out of its mapping while a bigger freed one is resident moves
 * there (a copy) rather than growing into fresh pages that fault in one by one. */
static void test_huge_block_grows_into_resident_memory(void **state)
{
    (void)state;
    unsigned char *freed;
    size_t size = 3 * MiB;
    unsigned char *block = block_beside_freed_mapping(1, 37, &freed); /* all resident */
    long faults_before = minor_faults();
    while (size < 6 * MiB)
        block = resize_and_check(block, &size, size + 64 * KiB, 37); /* and writes the new bytes */
    long faults = minor_faults() - faults_before;
    if (faults > 256) /* growing in place would fault in 768 pages */
        fail_msg("growing 3 MiB to 6 MiB beside a freed resident 6 MiB took %ld page faults",
                 faults);
    free(block);
}

/* ...but not into one that is mostly untouched: growing in place faults in only the new
 * pages, a copy there would fault in the whole block. */
static void test_huge_block_grows_in_place_beside_sparse_memory(void **state)
{
    (void)state;
    unsigned char *freed;
    size_t size = 3 * MiB;
    unsigned char *block = block_beside_freed_mapping(64 * KiB, 41, &freed); /* 1 page in 16 */
    block = resize_and_check(block, &size, size + 64 * KiB, 41);
    if (block == freed)
        fail_msg("a growing 3 MiB block was copied into a freed mapping with 1/16 resident");
    free(block);
}

static void test_realloc_to_same_size(void **state)
{
    (void)state;
    static const size_t sizes[] = {1, 16, 100, 1000, 4096, 20 * KiB, 100 * KiB, 1 * MiB,
                                   9 * MiB, 70 * MiB};
    for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
        unsigned char *block = malloc(sizes[i]);
        assert_non_null(block);
        size_t size = sizes[i];
        pattern_fill_range(block, 0, size, 29);
        for (int round = 0; round < 3; round++)
            block = resize_and_check(block, &size, sizes[i], 29);
        /* And to exactly the usable size, which the block already has room for. */
        block = resize_and_check(block, &size, malloc_usable_size(block), 29);
        free(block);
    }
}

/* A small block stays where it is while the new size fits it and uses at least half of
 * it, whichever thread asks; below half it moves to a smaller class. */
struct in_place_case {
    unsigned char *block;
    size_t usable;
};

/* Down to half the block and back up to all of it, in place; the block ends as it began,
 * usable bytes asked for and patterned. */
static void *resize_within_block(void *arg)
{
    struct in_place_case *c = arg;
    size_t size = c->usable;
    if (resize_and_check(c->block, &size, c->usable, 37) != c->block ||
        resize_and_check(c->block, &size, c->usable / 2, 37) != c->block ||
        resize_and_check(c->block, &size, c->usable, 37) != c->block)
        return "moved";
    return NULL;
}

static void test_small_block_stays_while_it_fits(void **state)
{
    (void)state;
    static const size_t sizes[] = {16, 100, 300, 1000, 3000, 20 * KiB};
    for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
        struct in_place_case c = {malloc(sizes[i]), 0};
        assert_non_null(c.block);
        c.usable = malloc_usable_size(c.block);
        pattern_fill_range(c.block, 0, c.usable, 37);
        assert_null(resize_within_block(&c));
        pthread_t thread;
        void *result;
        assert_int_equal(pthread_create(&thread, NULL, resize_within_block, &c), 0);
        assert_int_equal(pthread_join(thread, &result), 0);
        if (result != NULL)
            fail_msg("%zu-byte block moved when resized in another thread", c.usable);
        size_t size = c.usable;
        if (c.usable >= 32) {
            unsigned char *smaller = resize_and_check(c.block, &size, c.usable / 2 - 1, 37);
            if (smaller == c.block)
                fail_msg("%zu-byte block kept for %zu bytes", c.usable, c.usable / 2 - 1);
            c.block = smaller;
        }
        free(c.block);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_grow_and_shrink_by_one_byte),
        cmocka_unit_test(test_double_up_and_halve_down),
        cmocka_unit_test(test_jumps_into_and_out_of_huge),
        cmocka_unit_test(test_realloc_of_aligned_blocks),
        cmocka_unit_test(test_realloc_null_is_malloc),
        cmocka_unit_test(test_realloc_to_zero_frees),
        cmocka_unit_test(test_impossible_realloc_keeps_block),
        cmocka_unit_test(test_realloc_to_same_size),
        cmocka_unit_test(test_small_block_stays_while_it_fits),
        cmocka_unit_test(test_large_block_grows_in_place),
        cmocka_unit_test(test_huge_block_grown_a_little_at_a_time),
        cmocka_unit_test(test_huge_block_grows_into_its_reused_mapping),
        cmocka_unit_test(test_huge_block_grows_into_resident_memory),
        cmocka_unit_test(test_huge_block_grows_in_place_beside_sparse_memory),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
