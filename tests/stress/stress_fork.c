/* fork while other threads are inside the allocator: the child inherits whatever locks and
 * half-finished lists those threads held at that instant, and must still be able to
 * allocate, free the parent's blocks, start threads and exit. A child that hangs is killed
 * after a timeout and counts as a failure, as does a hang of the whole test (watchdog). */
#include <malloc.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <sys/wait.h>
#include <time.h>

#include "../testutil.h"

enum {
    BUSY_THREAD_COUNT = 4,
    BUSY_SLOTS = 64,
    FORK_COUNT = 50,
    PARENT_BLOCKS = 32,
    CHILD_TIMEOUT_MS = 10000,
    WATCHDOG_SECONDS = 120,
};

static atomic_bool stop_busy_threads;
static atomic_ulong busy_operations;

/* Blocks the main thread owns across every fork; each child checks and frees its copy. */
static held_block_t parent_blocks[PARENT_BLOCKS];

/* Allocates and frees without pause, so that a fork is likely to land inside a call. */
static void *busy_thread(void *argument)
{
    uint64_t self = (uint64_t)(uintptr_t)argument;
    uint64_t rng = random_seed(300 + self);
    uint64_t generation = 0;
    held_block_t held[BUSY_SLOTS] = {{0}};
    while (!atomic_load_explicit(&stop_busy_threads, memory_order_relaxed)) {
        held_block_t *slot = &held[random_below(&rng, BUSY_SLOTS)];
        if (slot->block != NULL) {
            held_check_and_free(slot, "busy");
            continue;
        }
        /* Mostly small, one in 1000 huge so mapping calls are in flight at fork time too. */
        size_t size = random_below(&rng, 1000) == 0 ? 2 * MiB + random_below(&rng, 6 * MiB)
                                                   : random_log_size(&rng, 256 * KiB);
        held_allocate(slot, size, pattern_seed(self, ++generation));
        atomic_fetch_add_explicit(&busy_operations, 1, memory_order_relaxed);
    }
    for (int i = 0; i < BUSY_SLOTS; i++)
        if (held[i].block != NULL)
            held_check_and_free(&held[i], "busy");
    return NULL;
}

static void *child_thread(void *argument)
{
    held_block_t *from_child_main = argument;
    held_check_and_free(from_child_main, "child main's");
    for (int i = 0; i < 100; i++) {
        held_block_t held;
        held_allocate(&held, (size_t)(i * 37 % 5000), (uint64_t)i);
        held_check_and_free(&held, "child thread's");
    }
    held_block_t huge;
    held_allocate(&huge, 9 * MiB, 9);
    held_check_and_free(&huge, "child thread's huge");
    return NULL;
}

/* Everything a child does before _exit; any failed check exits with status 1. */
static void child_work(int fork_number)
{
    for (int i = 0; i < PARENT_BLOCKS; i++)
        held_check_and_free(&parent_blocks[i], "inherited");

    static const size_t sizes[] = {0,       1,       24,      100,      1000,    4096,
                                   20 * KiB, 100 * KiB, 1 * MiB, 5 * MiB, 16 * MiB};
    held_block_t held[sizeof sizes / sizeof sizes[0]];
    for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++)
        held_allocate(&held[i], sizes[i], pattern_seed((uint64_t)fork_number, i));
    for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++)
        held_check_and_free(&held[i], "child's");

    unsigned char *zeroed = calloc(1, 3 * MiB);
    CHECK(zeroed != NULL && zero_mismatch(zeroed, 3 * MiB) == SIZE_MAX, "calloc in child");
    unsigned char *grown = realloc(zeroed, 12 * MiB);
    CHECK(grown != NULL, "realloc in child failed");
    free(grown);
    void *aligned = NULL;
    CHECK(posix_memalign(&aligned, 64 * KiB, 1000) == 0 && is_aligned(aligned, 64 * KiB),
          "posix_memalign in child");
    free(aligned);

    held_block_t handed_over;
    held_allocate(&handed_over, 777, 777);
    pthread_t thread;
    CHECK(pthread_create(&thread, NULL, child_thread, &handed_over) == 0,
          "pthread_create in child");
    CHECK(pthread_join(thread, NULL) == 0, "pthread_join in child");
}

static long milliseconds_since(const struct timespec *start)
{
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    return (now.tv_sec - start->tv_sec) * 1000 + (now.tv_nsec - start->tv_nsec) / 1000000;
}

/* Waits for the child up to the timeout; a child still running then is deadlocked. */
static void wait_for_child(pid_t child, int fork_number)
{
    struct timespec start;
    clock_gettime(CLOCK_MONOTONIC, &start);
    for (;;) {
        int status = 0;
        pid_t done = waitpid(child, &status, WNOHANG);
        CHECK(done >= 0, "waitpid failed");
        if (done == child) {
            CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0,
                  "child %d ended with status 0x%x%s", fork_number, status,
                  WIFSIGNALED(status) ? " (killed by a signal)" : "");
            return;
        }
        if (milliseconds_since(&start) > CHILD_TIMEOUT_MS) {
            kill(child, SIGKILL);
            waitpid(child, &status, 0);
            CHECK(false, "child %d hung for %d ms after fork (deadlock in the allocator?)",
                  fork_number, CHILD_TIMEOUT_MS);
        }
        nanosleep(&(struct timespec){0, 1000000}, NULL);
    }
}

/* The forks, under whatever VMALLOC_CHECK this process started with. */
static void fork_under_busy_threads(const char *label)
{
    for (int i = 0; i < PARENT_BLOCKS; i++)
        held_allocate(&parent_blocks[i], (size_t)1 << (i % 24), pattern_seed(7, (uint64_t)i));

    pthread_t busy[BUSY_THREAD_COUNT];
    for (int i = 0; i < BUSY_THREAD_COUNT; i++)
        CHECK(pthread_create(&busy[i], NULL, busy_thread, (void *)(uintptr_t)i) == 0,
              "pthread_create");

    uint64_t rng = random_seed(4);
    for (int n = 0; n < FORK_COUNT; n++) {
        /* Let the busy threads get going, a varying moment so forks land all over. */
        unsigned long target = atomic_load(&busy_operations) + 50 + random_below(&rng, 500);
        while (atomic_load(&busy_operations) < target)
            nanosleep(&(struct timespec){0, 100000}, NULL);
        fflush(stdout);
        pid_t child = fork();
        CHECK(child >= 0, "fork failed");
        if (child == 0) {
            child_work(n);
            _exit(0);
        }
        wait_for_child(child, n);
        /* The parent's own heap is unaffected by the fork. */
        int replaced = (int)random_below(&rng, PARENT_BLOCKS);
        held_check_and_free(&parent_blocks[replaced], "parent's");
        held_allocate(&parent_blocks[replaced], random_log_size(&rng, 64 * KiB),
                      pattern_seed(8, (uint64_t)n));
    }

    atomic_store(&stop_busy_threads, true);
    for (int i = 0; i < BUSY_THREAD_COUNT; i++)
        CHECK(pthread_join(busy[i], NULL) == 0, "pthread_join");
    for (int i = 0; i < PARENT_BLOCKS; i++)
        held_check_and_free(&parent_blocks[i], "parent's");
    printf("stress_fork%s: %d forks under %d busy threads (%lu allocations) ok\n", label,
           FORK_COUNT, BUSY_THREAD_COUNT, atomic_load(&busy_operations));
}

/* Then again at VMALLOC_CHECK=3, whose quarantine has a lock of its own on every free. */
int main(int argc, char **argv)
{
    alarm(WATCHDOG_SECONDS);
    if (argc > 1 && strcmp(argv[1], "checked") == 0) {
        fork_under_busy_threads(" at VMALLOC_CHECK=3");
        return 0;
    }
    fork_under_busy_threads("");
    fflush(stdout);
    char err[4096];
    int status = run_self((const char *[]){"checked", NULL},
                          (const char *[]){"VMALLOC_CHECK=3", NULL}, err, sizeof err, NULL);
    CHECK(status >= 0 && WIFEXITED(status) && WEXITSTATUS(status) == 0,
          "the forks at VMALLOC_CHECK=3 failed (status 0x%x): %s", status, err);
    return 0;
}
