/* Thread churn: thousands of short-lived threads each allocate, free part of what they
 * allocated and leave the rest to the main thread, which frees it after they are gone, so
 * thread heaps are created, abandoned and reclaimed over and over. Then every API is tried
 * as the very first call of a brand-new thread, where a lazily set-up thread heap has to
 * come into being inside that call. */
#include <malloc.h>
#include <pthread.h>

#include "../testutil.h"

enum {
    THREAD_COUNT = 5000,
    BATCH_SIZE = 16,
    BLOCKS_PER_THREAD = 10,
    WATCHDOG_SECONDS = 120,
};

/* What a short-lived thread leaves behind for the main thread to free. */
typedef struct {
    int count;
    held_block_t blocks[BLOCKS_PER_THREAD];
} leftovers_t;

static void *short_lived_thread(void *argument)
{
    uint64_t number = (uint64_t)(uintptr_t)argument;
    uint64_t rng = random_seed(number);
    held_block_t held[BLOCKS_PER_THREAD];
    for (int i = 0; i < BLOCKS_PER_THREAD; i++) {
        /* Mostly small blocks, some up to 256 KiB, and every 50th thread one huge one. */
        size_t size = i == 0 && number % 50 == 0 ? 3 * MiB + random_below(&rng, 4096)
                                                 : random_log_size(&rng, 256 * KiB);
        held[i].size = size;
        held[i].seed = pattern_seed(number, (uint64_t)i);
        held[i].block = i % 3 == 2 ? calloc(1, size) : malloc(size);
        CHECK(held[i].block != NULL, "allocation of %zu bytes in thread %lu failed", size,
              (unsigned long)number);
        if (i % 3 == 2)
            CHECK(zero_mismatch(held[i].block, size) == SIZE_MAX, "calloc(%zu) not zero",
                  size);
        pattern_fill(held[i].block, size, held[i].seed);
    }
    /* Free a random majority here and hand the rest (1-4 blocks) to the main thread. */
    leftovers_t *leftovers = malloc(sizeof *leftovers);
    CHECK(leftovers != NULL, "malloc of leftovers failed");
    leftovers->count = 0;
    int to_leave = 1 + (int)random_below(&rng, 4);
    for (int i = 0; i < BLOCKS_PER_THREAD; i++) {
        if (i >= BLOCKS_PER_THREAD - to_leave)
            leftovers->blocks[leftovers->count++] = held[i];
        else
            held_check_and_free(&held[i], "own");
    }
    return leftovers;
}

static void run_thread_churn(void)
{
    pthread_t batch[BATCH_SIZE];
    unsigned long inherited = 0;
    for (int first = 0; first < THREAD_COUNT; first += BATCH_SIZE) {
        int count = THREAD_COUNT - first < BATCH_SIZE ? THREAD_COUNT - first : BATCH_SIZE;
        for (int i = 0; i < count; i++) {
            int error = pthread_create(&batch[i], NULL, short_lived_thread,
                                       (void *)(uintptr_t)(first + i + 1));
            CHECK(error == 0, "pthread_create failed with %d at thread %d", error, first + i);
        }
        for (int i = 0; i < count; i++) {
            leftovers_t *leftovers = NULL;
            CHECK(pthread_join(batch[i], (void **)&leftovers) == 0, "pthread_join");
            CHECK(leftovers != NULL && leftovers->count >= 1 && leftovers->count <= 4,
                  "thread %d returned no leftovers", first + i);
            for (int b = 0; b < leftovers->count; b++)
                held_check_and_free(&leftovers->blocks[b], "inherited");
            inherited += (unsigned long)leftovers->count;
            free(leftovers);
        }
    }
    printf("stress_churn: %d threads, %lu blocks freed by main after their thread exited\n",
           THREAD_COUNT, inherited);
}

/* After a first call, the same thread must go on allocating normally. */
static void check_thread_heap_works(void)
{
    for (size_t size = 1; size <= 1 * MiB; size *= 4) {
        unsigned char *block = malloc(size);
        CHECK(block != NULL, "malloc(%zu) after the first call failed", size);
        pattern_fill(block, size, size);
        CHECK(pattern_mismatch(block, size, size, size) == SIZE_MAX, "block corrupt");
        free(block);
    }
}

/* Checks a block returned by a first call and frees it in the same thread. */
static void check_first_block(void *block, size_t size, size_t alignment, const char *call)
{
    CHECK(block != NULL, "%s as a thread's first call returned NULL", call);
    CHECK(is_aligned(block, alignment), "%s as first call: %p is not %zu-aligned", call,
          block, alignment);
    CHECK(malloc_usable_size(block) >= size, "%s as first call: usable size %zu < %zu", call,
          malloc_usable_size(block), size);
    fill_bytes(block, 0x5A, size);
    free(block);
    check_thread_heap_works();
}

/* Each of these is the start routine of a new thread, and the call under test is its very
 * first statement: nothing else may have touched the allocator in that thread before. */
static void *first_malloc(void *unused)
{
    void *block = malloc(100);
    (void)unused;
    check_first_block(block, 100, 16, "malloc(100)");
    return NULL;
}

static void *first_malloc_huge(void *unused)
{
    void *block = malloc(6 * MiB);
    (void)unused;
    check_first_block(block, 6 * MiB, 16, "malloc(6 MiB)");
    return NULL;
}

static void *first_calloc(void *unused)
{
    unsigned char *block = calloc(10, 100);
    (void)unused;
    CHECK(block != NULL, "calloc as first call failed");
    CHECK(zero_mismatch(block, 1000) == SIZE_MAX, "calloc as first call: not zeroed");
    check_first_block(block, 1000, 16, "calloc(10, 100)");
    return NULL;
}

static void *first_realloc_null(void *unused)
{
    void *block = realloc(NULL, 200);
    (void)unused;
    check_first_block(block, 200, 16, "realloc(NULL, 200)");
    return NULL;
}

static void *first_posix_memalign(void *unused)
{
    void *block = NULL;
    int error = posix_memalign(&block, 256, 1000);
    (void)unused;
    CHECK(error == 0, "posix_memalign as first call failed with %d", error);
    check_first_block(block, 1000, 256, "posix_memalign(256, 1000)");
    return NULL;
}

static void *first_aligned_alloc(void *unused)
{
    void *block = aligned_alloc(4096, 8192);
    (void)unused;
    check_first_block(block, 8192, 4096, "aligned_alloc(4096, 8192)");
    return NULL;
}

static void *first_memalign(void *unused)
{
    void *block = memalign(64, 100);
    (void)unused;
    check_first_block(block, 100, 64, "memalign(64, 100)");
    return NULL;
}

static void *first_valloc(void *unused)
{
    void *block = valloc(5000);
    (void)unused;
    check_first_block(block, 5000, (size_t)sysconf(_SC_PAGESIZE), "valloc(5000)");
    return NULL;
}

static void *first_pvalloc(void *unused)
{
    void *block = pvalloc(5000);
    (void)unused;
    size_t page = (size_t)sysconf(_SC_PAGESIZE);
    check_first_block(block, (5000 + page - 1) / page * page, page, "pvalloc(5000)");
    return NULL;
}

static void *first_usable_size_of_null(void *unused)
{
    size_t usable = malloc_usable_size(NULL);
    (void)unused;
    CHECK(usable == 0, "malloc_usable_size(NULL) as first call = %zu", usable);
    check_thread_heap_works();
    return NULL;
}

static void *first_free_null(void *unused)
{
    free(NULL);
    (void)unused;
    check_thread_heap_works();
    return NULL;
}

/* The block comes from the main thread: the first thing this thread does is free memory
 * it never allocated, before it has any heap of its own. */
static void *first_free_foreign(void *argument)
{
    free(argument);
    check_thread_heap_works();
    return NULL;
}

static void *first_mallinfo2(void *unused)
{
    struct mallinfo2 info = mallinfo2();
    (void)unused;
    /* Main holds a block for the whole test, so something is in use. */
    CHECK(info.uordblks > 0, "mallinfo2 as first call reports nothing in use");
    CHECK(info.arena + info.hblkhd >= info.uordblks,
          "mallinfo2 as first call: arena %zu + hblkhd %zu < uordblks %zu", info.arena,
          info.hblkhd, info.uordblks);
    check_thread_heap_works();
    return NULL;
}

static void *first_malloc_trim(void *unused)
{
    int trimmed = malloc_trim(0);
    (void)unused;
    CHECK(trimmed == 0 || trimmed == 1, "malloc_trim(0) as first call returned %d", trimmed);
    check_thread_heap_works();
    return NULL;
}

static void run_in_new_thread(void *(*start)(void *), void *argument, const char *name)
{
    pthread_t thread;
    int error = pthread_create(&thread, NULL, start, argument);
    CHECK(error == 0, "pthread_create for %s failed with %d", name, error);
    CHECK(pthread_join(thread, NULL) == 0, "pthread_join for %s", name);
}

static void run_first_calls(void)
{
    static const struct {
        void *(*start)(void *);
        const char *name;
    } first_calls[] = {
        {first_malloc, "malloc"},
        {first_malloc_huge, "malloc huge"},
        {first_calloc, "calloc"},
        {first_realloc_null, "realloc(NULL)"},
        {first_posix_memalign, "posix_memalign"},
        {first_aligned_alloc, "aligned_alloc"},
        {first_memalign, "memalign"},
        {first_valloc, "valloc"},
        {first_pvalloc, "pvalloc"},
        {first_usable_size_of_null, "malloc_usable_size(NULL)"},
        {first_free_null, "free(NULL)"},
        {first_mallinfo2, "mallinfo2"},
        {first_malloc_trim, "malloc_trim"},
    };
    void *kept_by_main = malloc(64 * KiB);
    CHECK(kept_by_main != NULL, "malloc in main failed");
    fill_bytes(kept_by_main, 1, 64 * KiB);
    /* Twice: once while the process is young, once after the first round's threads have
     * exited and left their heaps to be reused. */
    for (int round = 0; round < 2; round++) {
        for (size_t i = 0; i < sizeof first_calls / sizeof first_calls[0]; i++)
            run_in_new_thread(first_calls[i].start, NULL, first_calls[i].name);
        static const size_t foreign_sizes[] = {24, 3000, 100 * KiB, 5 * MiB};
        for (size_t i = 0; i < sizeof foreign_sizes / sizeof foreign_sizes[0]; i++) {
            void *block = malloc(foreign_sizes[i]);
            CHECK(block != NULL, "malloc(%zu) in main failed", foreign_sizes[i]);
            fill_bytes(block, 2, foreign_sizes[i]);
            run_in_new_thread(first_free_foreign, block, "free of main's block");
        }
    }
    free(kept_by_main);
    printf("stress_churn: every API works as the first call of a new thread\n");
}

/* After all the churn, the main thread's heap is still sound. */
static void check_heap_after_churn(void)
{
    enum { COUNT = 2000 };
    static held_block_t held[COUNT];
    uint64_t rng = random_seed(99);
    for (int i = 0; i < COUNT; i++) {
        held[i].size = random_log_size(&rng, 512 * KiB);
        held[i].seed = pattern_seed(1u << 20, (uint64_t)i);
        held[i].block = malloc(held[i].size);
        CHECK(held[i].block != NULL, "malloc(%zu) after churn failed", held[i].size);
        pattern_fill(held[i].block, held[i].size, held[i].seed);
    }
    for (int i = 0; i < COUNT; i++)
        held_check_and_free(&held[i], "final");
}

/* Every block of the churn was freed: once malloc_trim has adopted what the exited threads
 * left and brought home what was freed into their pages, nothing may still count as in
 * use but the little the main thread keeps (stdio's buffer). A page whose remote frees
 * nobody collects (a lost notification) would keep its blocks counted here for good. */
static void check_nothing_leaked(void)
{
    malloc_trim(0);
    struct mallinfo2 info = mallinfo2();
    printf("stress_churn: %zu bytes in use at the end\n", info.uordblks);
    CHECK(info.uordblks < 64 * KiB, "%zu bytes still in use after every block was freed",
          info.uordblks);
}

int main(void)
{
    alarm(WATCHDOG_SECONDS);
    run_thread_churn();
    check_heap_after_churn();
    run_first_calls();
    check_heap_after_churn();
    check_nothing_leaked();
    return 0;
}
