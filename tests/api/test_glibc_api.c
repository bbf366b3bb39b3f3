/* glibc's heap introspection and tuning calls: mallinfo2 and mallinfo report real numbers
 * that follow what the program allocates, malloc_trim and mallopt answer as glibc does,
 * and malloc_stats / malloc_info produce their reports. */
#include <errno.h>
#include <limits.h>
#include <malloc.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include "../testutil.h"

/* When the tests run on glibc itself (VMALLOC_TEST_ON_GLIBC set), the few answers where
 * vmalloc deliberately differs from glibc are accepted in glibc's form as well. */
static bool on_glibc(void)
{
    return getenv("VMALLOC_TEST_ON_GLIBC") != NULL;
}

static void check_mapped_plus_arena_cover_in_use(struct mallinfo2 info)
{
    if (info.arena + info.hblkhd < info.uordblks)
        fail_msg("arena %zu + hblkhd %zu < uordblks %zu", info.arena, info.hblkhd,
                 info.uordblks);
}

/* 1000 blocks of 10 KiB must show up in uordblks: at least the 10,240,000 bytes asked for,
 * and at most 12 MiB, which allows about 20% rounding and headers but not, say, counting
 * whole pages or segments as in use. Freeing them must take nearly all of it back off. */
static void test_mallinfo2_follows_small_blocks(void **state)
{
    (void)state;
    enum { COUNT = 1000, SIZE = 10 * 1024 };
    static void *blocks[COUNT];
    struct mallinfo2 before = mallinfo2();
    check_mapped_plus_arena_cover_in_use(before);
    for (int i = 0; i < COUNT; i++) {
        blocks[i] = malloc(SIZE);
        assert_non_null(blocks[i]);
        fill_bytes(blocks[i], i, SIZE);
    }
    struct mallinfo2 during = mallinfo2();
    check_mapped_plus_arena_cover_in_use(during);
    size_t requested = (size_t)COUNT * SIZE;
    if (during.uordblks < before.uordblks + requested)
        fail_msg("uordblks grew from %zu to %zu, less than the %zu bytes allocated",
                 before.uordblks, during.uordblks, requested);
    size_t growth = during.uordblks - before.uordblks;
    if (growth > 12 * MiB)
        fail_msg("uordblks grew by %zu for %zu bytes allocated", growth, requested);

    for (int i = 0; i < COUNT; i++)
        free(blocks[i]);
    struct mallinfo2 after = mallinfo2();
    check_mapped_plus_arena_cover_in_use(after);
    const size_t slack = 1 * MiB;
    if (after.uordblks + (growth - slack) > during.uordblks)
        fail_msg("uordblks only fell from %zu to %zu after freeing %zu bytes",
                 during.uordblks, after.uordblks, growth);
}

/* A 50 MiB block is mapped on its own and counted in hblkhd while it lives. */
static void test_mallinfo2_counts_mapped_blocks(void **state)
{
    (void)state;
    struct mallinfo2 before = mallinfo2();
    void *block = malloc(50 * MiB);
    assert_non_null(block);
    fill_bytes(block, 0x55, 4096);
    struct mallinfo2 during = mallinfo2();
    check_mapped_plus_arena_cover_in_use(during);
    if (during.hblkhd < before.hblkhd + 50 * MiB)
        fail_msg("hblkhd grew from %zu to %zu with a 50 MiB block live", before.hblkhd,
                 during.hblkhd);
    assert_true(during.hblks >= before.hblks + 1);
    free(block);
    struct mallinfo2 after = mallinfo2();
    check_mapped_plus_arena_cover_in_use(after);
    if (after.hblkhd + 50 * MiB > during.hblkhd)
        fail_msg("hblkhd only fell from %zu to %zu after freeing 50 MiB", during.hblkhd,
                 after.hblkhd);
}

/* The old int version must report the same numbers whenever they fit in an int. */
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wdeprecated-declarations"
static void compare_mallinfo_with_mallinfo2(void)
{
    struct mallinfo2 wide = mallinfo2();
    struct mallinfo narrow = mallinfo();
#define SAME_WHEN_FITS(field)                                                               \
    do {                                                                                    \
        if (wide.field <= INT_MAX && (size_t)narrow.field != wide.field)                    \
            fail_msg("mallinfo()." #field " = %d but mallinfo2()." #field " = %zu",         \
                     narrow.field, wide.field);                                             \
    } while (0)
    SAME_WHEN_FITS(arena);
    SAME_WHEN_FITS(ordblks);
    SAME_WHEN_FITS(smblks);
    SAME_WHEN_FITS(hblks);
    SAME_WHEN_FITS(hblkhd);
    SAME_WHEN_FITS(usmblks);
    SAME_WHEN_FITS(fsmblks);
    SAME_WHEN_FITS(uordblks);
    SAME_WHEN_FITS(fordblks);
    SAME_WHEN_FITS(keepcost);
#undef SAME_WHEN_FITS
}
#pragma GCC diagnostic pop

static void test_mallinfo_agrees_with_mallinfo2(void **state)
{
    (void)state;
    compare_mallinfo_with_mallinfo2();
    void *small = malloc(3000), *large = malloc(20 * MiB);
    assert_non_null(small);
    assert_non_null(large);
    compare_mallinfo_with_mallinfo2();
    free(large);
    free(small);
    compare_mallinfo_with_mallinfo2();
}

static void test_malloc_trim_keeps_heap_working(void **state)
{
    (void)state;
    enum { COUNT = 512 };
    static unsigned char *blocks[COUNT];
    for (int round = 0; round < 3; round++) {
        for (int i = 0; i < COUNT; i++) {
            size_t size = (size_t)(i % 64 + 1) * 1000;
            blocks[i] = malloc(size);
            assert_non_null(blocks[i]);
            pattern_fill(blocks[i], size, (uint64_t)(round * COUNT + i));
        }
        /* Free every other block first, so trimming sees a fragmented heap, then the rest. */
        for (int i = 0; i < COUNT; i += 2)
            free(blocks[i]);
        int trimmed = malloc_trim(0);
        assert_true(trimmed == 0 || trimmed == 1);
        for (int i = 1; i < COUNT; i += 2) {
            size_t size = (size_t)(i % 64 + 1) * 1000;
            assert_int_equal(pattern_mismatch(blocks[i], size, size,
                                              (uint64_t)(round * COUNT + i)), SIZE_MAX);
            free(blocks[i]);
        }
        trimmed = malloc_trim(round == 2 ? 64 * KiB : 0);
        assert_true(trimmed == 0 || trimmed == 1);
    }
    /* Memory handed out after a trim is usable and, from calloc, zero. */
    for (int i = 0; i < COUNT; i++) {
        size_t size = (size_t)(i % 64 + 1) * 1000;
        blocks[i] = calloc(1, size);
        assert_non_null(blocks[i]);
        assert_int_equal(zero_mismatch(blocks[i], size), SIZE_MAX);
        pattern_fill(blocks[i], size, i);
    }
    for (int i = 0; i < COUNT; i++)
        free(blocks[i]);
}

static void test_mallopt_known_and_unknown(void **state)
{
    (void)state;
    assert_int_equal(mallopt(M_MMAP_THRESHOLD, 1 << 20), 1);
    /* glibc silently accepts any parameter number and returns 1; vmalloc reports that it
     * did nothing by returning 0, as mallopt(3) describes for errors. */
    int unknown = mallopt(12345, 1);
    if (!(unknown == 0 || (on_glibc() && unknown == 1)))
        fail_msg("mallopt(12345, 1) returned %d, expected 0", unknown);
    /* The heap works under the new threshold on both sides of it. */
    for (size_t size = 512 * KiB; size <= 2 * MiB; size += 256 * KiB) {
        void *block = malloc(size);
        assert_non_null(block);
        fill_bytes(block, 0x66, size);
        free(block);
    }
}

/* The whole content of a stdio stream written so far, as a NUL-terminated string. */
static char *read_back(FILE *stream)
{
    fflush(stream);
    long length = ftell(stream);
    assert_true(length >= 0);
    char *text = malloc((size_t)length + 1);
    assert_non_null(text);
    rewind(stream);
    size_t got = fread(text, 1, (size_t)length, stream);
    text[got] = '\0';
    return text;
}

/* malloc_stats writes a human-readable report to standard error (file descriptor 2, which
 * is also where an allocator that avoids stdio writes). Capture it in a temporary file. */
static void test_malloc_stats_reports_to_stderr(void **state)
{
    (void)state;
    void *held = malloc(100 * KiB);
    assert_non_null(held);
    FILE *capture = tmpfile();
    assert_non_null(capture);
    fflush(stderr);
    int saved_stderr = dup(2);
    assert_true(saved_stderr >= 0);
    assert_true(dup2(fileno(capture), 2) == 2);
    malloc_stats();
    fflush(stderr);
    dup2(saved_stderr, 2);
    close(saved_stderr);
    free(held);

    /* The report went through descriptor 2, not the stream's buffer: measure the file. */
    fseek(capture, 0, SEEK_END);
    char *report = read_back(capture);
    fclose(capture);
    if (strlen(report) == 0)
        fail_msg("malloc_stats wrote nothing to stderr");
    if (strstr(report, "in use") == NULL)
        fail_msg("malloc_stats report lacks \"in use\":\n%s", report);
    free(report);
}

static void test_malloc_info_writes_xml(void **state)
{
    (void)state;
    void *held = malloc(70 * KiB);
    assert_non_null(held);
    FILE *stream = tmpfile();
    assert_non_null(stream);
    assert_int_equal(malloc_info(0, stream), 0);
    free(held);
    char *xml = read_back(stream);
    fclose(stream);
    if (strncmp(xml, "<malloc", 7) != 0)
        fail_msg("malloc_info output does not start with <malloc: %.60s", xml);
    assert_non_null(strstr(xml, "</malloc>"));
    free(xml);
}

/* malloc_info takes no options yet. The manual page documents -1 with errno EINVAL for a
 * non-zero value, while glibc's code returns EINVAL itself; either is a clear refusal. */
static void test_malloc_info_rejects_options(void **state)
{
    (void)state;
    FILE *stream = tmpfile();
    assert_non_null(stream);
    errno = 0;
    int result = malloc_info(1, stream);
    int error = errno;
    fclose(stream);
    if (!(result == -1 && error == EINVAL) && result != EINVAL)
        fail_msg("malloc_info(1, stream) returned %d with errno %d, expected EINVAL", result,
                 error);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_mallinfo2_follows_small_blocks),
        cmocka_unit_test(test_mallinfo2_counts_mapped_blocks),
        cmocka_unit_test(test_mallinfo_agrees_with_mallinfo2),
        cmocka_unit_test(test_malloc_trim_keeps_heap_working),
        cmocka_unit_test(test_malloc_stats_reports_to_stderr),
        cmocka_unit_test(test_malloc_info_writes_xml),
        cmocka_unit_test(test_malloc_info_rejects_options),
        /* Last: it changes the mmap threshold for whatever would follow. */
        cmocka_unit_test(test_mallopt_known_and_unknown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
