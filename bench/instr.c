/*
 * The kernel of `make bench-instr`: a known number of heap operations, to be
 * counted by valgrind --tool=callgrind.
 *
 *     instr pair SIZE N     N times malloc(SIZE) then free, in one thread
 *     instr xfree SIZE N    the main thread mallocs N blocks of SIZE in batches
 *                           of 1000; a second thread frees each batch
 *     instr resize SIZE N   N reallocs of one block between SIZE and SIZE + 7
 *                           bytes (for SIZE 100, within one block of vmalloc's)
 *     instr move SIZE N     N reallocs of one block between SIZE and 3 * SIZE,
 *                           which move it between size classes
 *     instr aligned SIZE N  N times aligned_alloc(64, SIZE) then free
 *     instr new SIZE N      N times C++ operator new(SIZE) then the sized delete
 *
 * The runner counts the instructions of a run with N large and one with N
 * small: their difference over the difference in N is the cost of one
 * operation, start-up and exit cancelling out. The threads hand batches over
 * through pipes, so the count does not depend on scheduling: no thread spins.
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

enum { BATCH = 1000 };

/* C++'s operator new(size_t) and operator delete(void *, size_t), by their symbols
 * (this file is C): libstdc++'s, or the allocator's own where it defines them. */
void *cxx_new(size_t n) __asm__("_Znwm");
void cxx_delete_sized(void *p, size_t n) __asm__("_ZdlPvm");

/* Keep the compiler from pairing and removing malloc and free. */
static inline void escape(void *p)
{
    __asm__ volatile("" : : "r"(p) : "memory");
}

static int to_freer[2], to_maker[2];

static void xfer(int fd, void *buf, size_t n, int out)
{
    char *b = buf;
    while (n) {
        ssize_t k = out ? write(fd, b, n) : read(fd, b, n);
        if (k <= 0) {
            perror("instr: pipe");
            exit(2);
        }
        b += k;
        n -= (size_t)k;
    }
}

/* The freeing thread: receives a batch's address, frees its blocks, answers. */
static void *freer(void *arg)
{
    (void)arg;
    for (;;) {
        void **batch;
        xfer(to_freer[0], &batch, sizeof batch, 0);
        if (!batch)
            return NULL;
        for (int i = 0; i < BATCH; i++)
            free(batch[i]);
        xfer(to_maker[1], &batch, sizeof batch, 1);
    }
}

int main(int argc, char **argv)
{
    if (argc != 4 || (strcmp(argv[1], "pair") && strcmp(argv[1], "xfree") &&
                      strcmp(argv[1], "resize") && strcmp(argv[1], "move") &&
                      strcmp(argv[1], "aligned") && strcmp(argv[1], "new"))) {
        fprintf(stderr, "usage: %s pair|xfree|resize|move|aligned|new SIZE N\n", argv[0]);
        return 2;
    }
    size_t size = strtoul(argv[2], NULL, 10);
    long n = atol(argv[3]);

    if (!strcmp(argv[1], "resize") || !strcmp(argv[1], "move")) {
        int moving = !strcmp(argv[1], "move");
        void *p = malloc(size);
        for (long i = 0; i < n; i++) {
            size_t next = moving ? (i & 1 ? size : 3 * size) : size + (size_t)(i & 7);
            p = realloc(p, next);
            if (!p) {
                perror("instr: realloc");
                return 2;
            }
            escape(p);
        }
        free(p);
        return 0;
    }

    if (!strcmp(argv[1], "pair")) {
        for (long i = 0; i < n; i++) {
            void *p = malloc(size);
            escape(p);
            free(p);
        }
        return 0;
    }
    if (!strcmp(argv[1], "new")) {
        for (long i = 0; i < n; i++) {
            void *p = cxx_new(size);
            escape(p);
            cxx_delete_sized(p, size);
        }
        return 0;
    }
    if (!strcmp(argv[1], "aligned")) {
        for (long i = 0; i < n; i++) {
            void *p = aligned_alloc(64, size);
            escape(p);
            free(p);
        }
        return 0;
    }

    if (n % BATCH) {
        fprintf(stderr, "instr: N must be a multiple of %d\n", BATCH);
        return 2;
    }
    static void *batch[BATCH];
    void **b = batch;
    pthread_t t;
    if (pipe(to_freer) || pipe(to_maker) || pthread_create(&t, NULL, freer, NULL)) {
        perror("instr");
        return 2;
    }
    for (long done = 0; done < n; done += BATCH) {
        for (int i = 0; i < BATCH; i++) {
            batch[i] = malloc(size);
            escape(batch[i]);
        }
        xfer(to_freer[1], &b, sizeof b, 1);
        xfer(to_maker[0], &b, sizeof b, 0);
    }
    b = NULL;
    xfer(to_freer[1], &b, sizeof b, 1);
    pthread_join(t, NULL);
    return 0;
}
