/* One thread, a million random heap operations over 4096 slots. Every block carries a
 * pattern derived from its slot and generation, checked before the block is freed or
 * resized, so any overlap between live blocks, lost write or bad realloc copy is caught
 * where it happens. Deterministic: the same seed gives the same run. */
#include <errno.h>
#include <malloc.h>

#include "../testutil.h"

enum { SLOT_COUNT = 4096, OPERATION_COUNT = 1000000 };

/* One in this many new blocks is huge (4-16 MiB): rare enough to keep memory bounded,
 * frequent enough for a hundred or so mappings to come and go during the run. */
enum { HUGE_ONE_IN = 4000 };

typedef struct {
    unsigned char *block; /* NULL when the slot is empty */
    size_t size;          /* bytes requested, all patterned with seed */
    size_t alignment;     /* what the block was promised */
    uint64_t seed;
} slot_t;

typedef struct {
    unsigned long mallocs, callocs, aligned, realloc_news, reallocs, frees, huge;
    size_t live_bytes, peak_live_bytes;
} counters_t;

static slot_t slots[SLOT_COUNT];
static counters_t counters;
static uint64_t generation;

static size_t random_block_size(uint64_t *rng)
{
    if (random_below(rng, HUGE_ONE_IN) == 0) {
        counters.huge++;
        return 4 * MiB + random_below(rng, 12 * MiB + 1);
    }
    return random_log_size(rng, 1 * MiB);
}

/* Checks what every allocation promises, then patterns the block for its new owner. */
static void take_block(size_t index, unsigned char *block, size_t size, size_t alignment,
                       const char *how)
{
    CHECK(block != NULL, "%s of %zu bytes failed in slot %zu", how, size, index);
    CHECK(is_aligned(block, alignment), "%s(%zu) = %p, not %zu-aligned", how, size,
          (void *)block, alignment);
    CHECK(malloc_usable_size(block) >= size, "%s(%zu): usable size %zu", how, size,
          malloc_usable_size(block));
    slot_t *slot = &slots[index];
    slot->block = block;
    slot->size = size;
    slot->alignment = alignment;
    slot->seed = pattern_seed(index, ++generation);
    pattern_fill(block, size, slot->seed);
    counters.live_bytes += size;
    if (counters.live_bytes > counters.peak_live_bytes)
        counters.peak_live_bytes = counters.live_bytes;
}

static void verify_slot(size_t index, size_t limit, const char *before)
{
    slot_t *slot = &slots[index];
    size_t bad = pattern_mismatch(slot->block, slot->size, limit, slot->seed);
    CHECK(bad == SIZE_MAX, "slot %zu (%p, %zu bytes) corrupt at offset %zu before %s",
          index, (void *)slot->block, slot->size, bad, before);
}

static void allocate_into(size_t index, uint64_t *rng)
{
    size_t size = random_block_size(rng);
    unsigned choice = (unsigned)random_below(rng, 100);
    if (choice < 50) {
        counters.mallocs++;
        take_block(index, malloc(size), size, 16, "malloc");
    } else if (choice < 70) {
        counters.callocs++;
        /* Split the size between count and element size when it divides evenly. */
        unsigned char *block = size % 16 == 0 && size ? calloc(size / 16, 16) : calloc(size, 1);
        CHECK(block != NULL, "calloc of %zu bytes failed", size);
        size_t dirty = zero_mismatch(block, size);
        CHECK(dirty == SIZE_MAX, "calloc(%zu) = %p has a non-zero byte at %zu", size,
              (void *)block, dirty);
        take_block(index, block, size, 16, "calloc");
    } else if (choice < 85) {
        counters.aligned++;
        /* Alignments 8 B .. 64 KiB, occasionally 2 MiB (a huge-page boundary). */
        size_t alignment = random_below(rng, 50) == 0 ? 2 * MiB
                                                      : (size_t)8 << random_below(rng, 14);
        void *block = NULL;
        int error = posix_memalign(&block, alignment, size);
        CHECK(error == 0, "posix_memalign(%zu, %zu) failed with %d", alignment, size, error);
        take_block(index, block, size, alignment, "posix_memalign");
    } else {
        counters.realloc_news++;
        take_block(index, realloc(NULL, size), size, 16, "realloc(NULL)");
    }
}

static void release(size_t index)
{
    slot_t *slot = &slots[index];
    verify_slot(index, slot->size, "free");
    counters.frees++;
    counters.live_bytes -= slot->size;
    free(slot->block);
    slot->block = NULL;
}

/* Resizes a live block: the common prefix must survive, then the whole block is
 * re-patterned under a new generation. Size 0 is avoided since realloc(p, 0) frees. */
static void resize(size_t index, uint64_t *rng)
{
    slot_t *slot = &slots[index];
    size_t new_size = random_block_size(rng);
    if (new_size == 0)
        new_size = 1;
    verify_slot(index, slot->size, "realloc");
    unsigned char *moved = realloc(slot->block, new_size);
    CHECK(moved != NULL, "realloc(%p, %zu) of a %zu-byte block failed (errno %d)",
          (void *)slot->block, new_size, slot->size, errno);
    size_t kept = slot->size < new_size ? slot->size : new_size;
    size_t bad = pattern_mismatch(moved, slot->size, kept, slot->seed);
    CHECK(bad == SIZE_MAX, "realloc %zu -> %zu (%p -> %p) lost byte %zu of slot %zu",
          slot->size, new_size, (void *)slot->block, (void *)moved, bad, index);
    counters.reallocs++;
    counters.live_bytes -= slot->size;
    take_block(index, moved, new_size, 16, "realloc");
}

int main(void)
{
    uint64_t rng = random_seed(20240601);
    for (long step = 0; step < OPERATION_COUNT; step++) {
        size_t index = random_below(&rng, SLOT_COUNT);
        if (slots[index].block == NULL)
            allocate_into(index, &rng);
        else if (random_below(&rng, 100) < 55)
            release(index);
        else
            resize(index, &rng);
    }
    for (size_t index = 0; index < SLOT_COUNT; index++)
        if (slots[index].block != NULL)
            release(index);
    printf("stress_single: %d operations ok (malloc %lu, calloc %lu, posix_memalign %lu, "
           "realloc(NULL) %lu, realloc %lu, free %lu, huge %lu, peak live %zu MiB)\n",
           OPERATION_COUNT, counters.mallocs, counters.callocs, counters.aligned,
           counters.realloc_news, counters.reallocs, counters.frees, counters.huge,
           counters.peak_live_bytes / MiB);
    return 0;
}
