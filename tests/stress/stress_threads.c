/* Many threads (more than the cores, so they are preempted inside the allocator) allocate,
 * pattern and free blocks, and hand a share of them to each other through a lock-free
 * exchange array, so a large part of all frees happen on a thread other than the one that
 * allocated, some after the allocating thread has exited. A producer/consumer pair adds a
 * stream where every single block is freed by the other thread. Workers now and then
 * trim. Each block's pattern is checked before it is freed. A watchdog turns a hang into
 * a failure. */
#include <malloc.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>

#include "../testutil.h"

enum {
    WORKER_COUNT = 8,
    WORKER_ITERATIONS = 250000,
    LOCAL_SLOTS = 256,
    EXCHANGE_SLOTS = 4096,
    YIELD_EVERY = 32,
    TRIM_ONE_IN = 8192,
    PRODUCED_BLOCKS = 200000,
    QUEUE_CAPACITY = 256,
    WATCHDOG_SECONDS = 120,
};

/* A block in transit between threads. The parcel itself is heap memory too, allocated by
 * the sender and freed by the receiver: a steady source of small cross-thread frees. */
typedef struct {
    unsigned char *block;
    size_t size;
    uint64_t seed;
    int sender;       /* worker index, or -1 for the main thread */
    uint64_t checksum; /* over the fields above, to catch a parcel overwritten in transit */
} parcel_t;

static _Atomic(parcel_t *) exchange[EXCHANGE_SLOTS];
static atomic_ulong cross_thread_frees, same_thread_frees;

static uint64_t parcel_checksum(const parcel_t *parcel)
{
    return random_seed((uint64_t)(uintptr_t)parcel->block ^ (parcel->size << 17) ^
                       parcel->seed ^ (uint64_t)(parcel->sender + 2));
}

/* Sizes mostly up to 64 KiB, where thread caches matter, with one in a hundred up to
 * 1 MiB so page runs and dedicated mappings cross threads as well. */
static size_t random_block_size(uint64_t *rng)
{
    return random_log_size(rng, random_below(rng, 100) == 0 ? 1 * MiB : 64 * KiB);
}

/* Allocates a block by one of the allocation calls, checked and patterned with `seed`. */
static unsigned char *allocate_patterned(uint64_t *rng, size_t size, uint64_t seed)
{
    unsigned char *block;
    size_t alignment = 16;
    unsigned choice = (unsigned)random_below(rng, 10);
    if (choice < 6) {
        block = malloc(size);
    } else if (choice < 8) {
        block = calloc(1, size);
        CHECK(block != NULL, "calloc(1, %zu) failed", size);
        size_t dirty = zero_mismatch(block, size);
        CHECK(dirty == SIZE_MAX, "calloc(%zu) = %p has a non-zero byte at %zu", size,
              (void *)block, dirty);
    } else {
        alignment = (size_t)16 << random_below(rng, 9);
        void *aligned = NULL;
        CHECK(posix_memalign(&aligned, alignment, size) == 0, "posix_memalign(%zu, %zu)",
              alignment, size);
        block = aligned;
    }
    CHECK(block != NULL, "allocation of %zu bytes failed", size);
    CHECK(is_aligned(block, alignment), "%p is not %zu-aligned", (void *)block, alignment);
    CHECK(malloc_usable_size(block) >= size, "usable size %zu < %zu",
          malloc_usable_size(block), size);
    pattern_fill(block, size, seed);
    return block;
}

static void check_and_free(unsigned char *block, size_t size, uint64_t seed, const char *whose)
{
    size_t bad = pattern_mismatch(block, size, size, seed);
    CHECK(bad == SIZE_MAX, "%s block %p (%zu bytes) corrupt at offset %zu", whose,
          (void *)block, size, bad);
    free(block);
}

/* Unwraps a parcel received from the exchange: checks it, frees its block and itself. */
static void receive_parcel(parcel_t *parcel, int receiver)
{
    CHECK(parcel->checksum == parcel_checksum(parcel), "parcel %p overwritten in transit",
          (void *)parcel);
    check_and_free(parcel->block, parcel->size, parcel->seed, "received");
    if (parcel->sender == receiver)
        atomic_fetch_add_explicit(&same_thread_frees, 1, memory_order_relaxed);
    else
        atomic_fetch_add_explicit(&cross_thread_frees, 1, memory_order_relaxed);
    free(parcel);
}

typedef struct {
    unsigned char *block;
    size_t size;
    uint64_t seed;
} local_slot_t;

static void *worker(void *argument)
{
    int self = (int)(intptr_t)argument;
    uint64_t rng = random_seed(1000 + (uint64_t)self);
    uint64_t generation = 0;
    local_slot_t local[LOCAL_SLOTS] = {0};

    for (long iteration = 0; iteration < WORKER_ITERATIONS; iteration++) {
        /* On two cores a thread would otherwise run whole time slices alone and mostly
         * collect its own parcels; yielding often keeps the exchange really shared. */
        if (iteration % YIELD_EVERY == 0)
            sched_yield();
        /* Now and then give back all this heap can: pages lose their free blocks past
         * the last one in use while other threads free into them. */
        if (random_below(&rng, TRIM_ONE_IN) == 0)
            malloc_trim(0);
        local_slot_t *slot = &local[random_below(&rng, LOCAL_SLOTS)];
        if (slot->block == NULL) {
            slot->size = random_block_size(&rng);
            slot->seed = pattern_seed((uint64_t)self << 16, ++generation);
            slot->block = allocate_patterned(&rng, slot->size, slot->seed);
            continue;
        }
        unsigned choice = (unsigned)random_below(&rng, 100);
        if (choice < 40) {
            check_and_free(slot->block, slot->size, slot->seed, "local");
            slot->block = NULL;
        } else if (choice < 55) {
            /* Resize in place or by moving; the prefix survives, then re-pattern. */
            size_t new_size = random_block_size(&rng) + 1;
            size_t bad = pattern_mismatch(slot->block, slot->size, slot->size, slot->seed);
            CHECK(bad == SIZE_MAX, "local block corrupt at %zu before realloc", bad);
            unsigned char *moved = realloc(slot->block, new_size);
            CHECK(moved != NULL, "realloc to %zu failed", new_size);
            size_t kept = slot->size < new_size ? slot->size : new_size;
            bad = pattern_mismatch(moved, slot->size, kept, slot->seed);
            CHECK(bad == SIZE_MAX, "realloc %zu -> %zu lost byte %zu", slot->size, new_size,
                  bad);
            slot->block = moved;
            slot->size = new_size;
            slot->seed = pattern_seed((uint64_t)self << 16, ++generation);
            pattern_fill(moved, new_size, slot->seed);
        } else {
            /* Hand the block over: whatever was waiting in that exchange slot, most
             * likely another thread's, is ours to check and free. */
            parcel_t *parcel = malloc(sizeof *parcel);
            CHECK(parcel != NULL, "malloc of a parcel failed");
            *parcel = (parcel_t){slot->block, slot->size, slot->seed, self, 0};
            parcel->checksum = parcel_checksum(parcel);
            slot->block = NULL;
            parcel_t *received =
                atomic_exchange(&exchange[random_below(&rng, EXCHANGE_SLOTS)], parcel);
            if (received != NULL)
                receive_parcel(received, self);
        }
    }
    /* Leave half of what is still held in the exchange for others or for main, so some
     * blocks are freed after this thread is gone. */
    for (int i = 0; i < LOCAL_SLOTS; i++) {
        if (local[i].block == NULL)
            continue;
        if (i % 2) {
            check_and_free(local[i].block, local[i].size, local[i].seed, "final");
            continue;
        }
        parcel_t *parcel = malloc(sizeof *parcel);
        CHECK(parcel != NULL, "malloc of a parcel failed");
        *parcel = (parcel_t){local[i].block, local[i].size, local[i].seed, self, 0};
        parcel->checksum = parcel_checksum(parcel);
        parcel_t *received = atomic_exchange(&exchange[(size_t)i * 7 % EXCHANGE_SLOTS], parcel);
        if (received != NULL)
            receive_parcel(received, self);
    }
    return NULL;
}

/* A bounded queue between exactly one producer and one consumer. */
typedef struct {
    pthread_mutex_t lock;
    pthread_cond_t not_full, not_empty;
    parcel_t items[QUEUE_CAPACITY];
    size_t head, count;
    bool closed;
} queue_t;

static queue_t queue = {
    .lock = PTHREAD_MUTEX_INITIALIZER,
    .not_full = PTHREAD_COND_INITIALIZER,
    .not_empty = PTHREAD_COND_INITIALIZER,
};

static void *producer(void *argument)
{
    (void)argument;
    uint64_t rng = random_seed(77);
    for (uint64_t n = 0; n < PRODUCED_BLOCKS; n++) {
        size_t size = random_block_size(&rng);
        uint64_t seed = pattern_seed(0xFFFF, n);
        unsigned char *block = allocate_patterned(&rng, size, seed);
        pthread_mutex_lock(&queue.lock);
        while (queue.count == QUEUE_CAPACITY)
            pthread_cond_wait(&queue.not_full, &queue.lock);
        queue.items[(queue.head + queue.count) % QUEUE_CAPACITY] =
            (parcel_t){block, size, seed, WORKER_COUNT, 0};
        queue.count++;
        pthread_cond_signal(&queue.not_empty);
        pthread_mutex_unlock(&queue.lock);
    }
    pthread_mutex_lock(&queue.lock);
    queue.closed = true;
    pthread_cond_signal(&queue.not_empty);
    pthread_mutex_unlock(&queue.lock);
    return NULL;
}

static void *consumer(void *argument)
{
    unsigned long *consumed = argument;
    for (;;) {
        pthread_mutex_lock(&queue.lock);
        while (queue.count == 0 && !queue.closed)
            pthread_cond_wait(&queue.not_empty, &queue.lock);
        if (queue.count == 0) {
            pthread_mutex_unlock(&queue.lock);
            return NULL;
        }
        parcel_t item = queue.items[queue.head];
        queue.head = (queue.head + 1) % QUEUE_CAPACITY;
        queue.count--;
        pthread_cond_signal(&queue.not_full);
        pthread_mutex_unlock(&queue.lock);
        check_and_free(item.block, item.size, item.seed, "consumed");
        ++*consumed;
    }
}

int main(void)
{
    alarm(WATCHDOG_SECONDS);
    pthread_t workers[WORKER_COUNT], producer_thread, consumer_thread;
    unsigned long consumed = 0;
    CHECK(pthread_create(&producer_thread, NULL, producer, NULL) == 0, "pthread_create");
    CHECK(pthread_create(&consumer_thread, NULL, consumer, &consumed) == 0, "pthread_create");
    for (int i = 0; i < WORKER_COUNT; i++)
        CHECK(pthread_create(&workers[i], NULL, worker, (void *)(intptr_t)i) == 0,
              "pthread_create");
    for (int i = 0; i < WORKER_COUNT; i++)
        CHECK(pthread_join(workers[i], NULL) == 0, "pthread_join");
    CHECK(pthread_join(producer_thread, NULL) == 0, "pthread_join");
    CHECK(pthread_join(consumer_thread, NULL) == 0, "pthread_join");
    CHECK(consumed == PRODUCED_BLOCKS, "consumer freed %lu of %d blocks", consumed,
          PRODUCED_BLOCKS);

    /* Everything left in the exchange was allocated by threads that have exited. */
    for (int i = 0; i < EXCHANGE_SLOTS; i++) {
        parcel_t *parcel = atomic_exchange(&exchange[i], NULL);
        if (parcel != NULL)
            receive_parcel(parcel, -1);
    }
    unsigned long cross = atomic_load(&cross_thread_frees);
    unsigned long same = atomic_load(&same_thread_frees);
    /* About 7 in 8 when the threads interleave well; a loaded machine runs them in longer
     * slices, so only insist that the exchange really moved most blocks between threads. */
    CHECK(cross > same, "only %lu of %lu exchanged blocks crossed threads", cross,
          cross + same);

    /* The heap is still sound after all threads are gone. */
    uint64_t rng = random_seed(5);
    for (int i = 0; i < 1000; i++) {
        size_t size = random_block_size(&rng);
        unsigned char *block = allocate_patterned(&rng, size, (uint64_t)i);
        check_and_free(block, size, (uint64_t)i, "final");
    }
    printf("stress_threads: %d workers x %d iterations, %lu cross-thread and %lu same-thread "
           "exchange frees, %lu produced/consumed blocks ok\n",
           WORKER_COUNT, WORKER_ITERATIONS, cross, same, consumed);
    return 0;
}
