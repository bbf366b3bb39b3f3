/* Helpers shared by the api and stress tests: a seeded PRNG, log-uniform sizes,
 * position-dependent byte patterns that detect overlapping blocks, lost writes and
 * realloc copies at the wrong offset, and children (forked, or this program run anew
 * with its environment set) whose stderr is captured. Header only, so every test stays
 * one program. */
#ifndef VMALLOC_TESTUTIL_H
#define VMALLOC_TESTUTIL_H

#include <errno.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#define KiB ((size_t)1 << 10)
#define MiB ((size_t)1 << 20)

/* Stress tests check from many threads, where cmocka's longjmp cannot be used: print one
 * line and leave at once, without running atexit handlers under other threads' feet. */
#define CHECK(cond, ...)                                                                    \
    do {                                                                                    \
        if (!(cond)) {                                                                      \
            fprintf(stderr, "FAIL %s:%d: %s: ", __FILE__, __LINE__, #cond);                 \
            fprintf(stderr, __VA_ARGS__);                                                   \
            fputc('\n', stderr);                                                            \
            _exit(1);                                                                       \
        }                                                                                   \
    } while (0)

/* xorshift64*: fast, good enough for choosing operations, and reproducible from a seed. */
static inline uint64_t random_next(uint64_t *state)
{
    uint64_t x = *state;
    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    *state = x;
    return x * 0x2545F4914F6CDD1DULL;
}

/* A seed must never be zero for xorshift, so mix it through splitmix64 first. */
static inline uint64_t random_seed(uint64_t seed)
{
    uint64_t z = seed + 0x9E3779B97F4A7C15ULL;
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
    z ^= z >> 31;
    return z ? z : 1;
}

/* A uniform value in [0, bound); bound 0 gives 0. The modulo bias is irrelevant here. */
static inline size_t random_below(uint64_t *state, size_t bound)
{
    return bound ? (size_t)(random_next(state) % bound) : 0;
}

/* A size whose logarithm is uniform over [0, log2(max)], so every size class from 0 up to
 * max is exercised about equally often instead of the large ones dominating. */
static inline size_t random_log_size(uint64_t *state, size_t max)
{
    unsigned bits = 0;
    while (((size_t)1 << (bits + 1)) <= max && bits + 1 < 63)
        bits++;
    unsigned magnitude = (unsigned)random_below(state, bits + 2); /* 0 means size 0 */
    if (magnitude == 0)
        return 0;
    size_t low = (size_t)1 << (magnitude - 1);
    size_t span = max - low + 1 < low ? max - low + 1 : low;
    return low + random_below(state, span);
}

/* The pattern word at byte offset `offset` (a multiple of 8) of a block with this seed.
 * It depends on the position, so a block copied to a shifted address does not match. */
static inline uint64_t pattern_word(uint64_t seed, size_t offset)
{
    return seed ^ ((uint64_t)(offset + 8) * 0x9E3779B97F4A7C15ULL);
}

static inline uint8_t pattern_byte(uint64_t seed, size_t offset)
{
    return (uint8_t)(pattern_word(seed, offset & ~(size_t)7) >> (8 * (offset & 7)));
}

/* Writes the pattern to bytes [from, to) of the block; blocks are at least 8-aligned. */
static inline void pattern_fill_range(void *block, size_t from, size_t to, uint64_t seed)
{
    uint8_t *bytes = block;
    size_t i = from;
    for (; i < to && (i & 7); i++)
        bytes[i] = pattern_byte(seed, i);
    for (; i + 8 <= to; i += 8)
        *(uint64_t *)(void *)(bytes + i) = pattern_word(seed, i);
    for (; i < to; i++)
        bytes[i] = pattern_byte(seed, i);
}

/* The offset of the first byte in [from, to) that differs from the pattern, or SIZE_MAX. */
static inline size_t pattern_mismatch_range(const void *block, size_t from, size_t to,
                                            uint64_t seed)
{
    const uint8_t *bytes = block;
    size_t i = from;
    for (; i < to && (i & 7); i++)
        if (bytes[i] != pattern_byte(seed, i))
            return i;
    for (; i + 8 <= to; i += 8)
        if (*(const uint64_t *)(const void *)(bytes + i) != pattern_word(seed, i))
            break;
    for (; i < to; i++)
        if (bytes[i] != pattern_byte(seed, i))
            return i;
    return SIZE_MAX;
}

/* Stress tests would spend all their time in memset/memcmp if they covered every byte of
 * every large block, so above this size only the first and last pages plus one word per
 * page are patterned. That still catches any overlap of two live blocks, since both ends
 * and every page of each block carry its own seed. */
#define PATTERN_FULL_LIMIT (16 * KiB)
#define PATTERN_EDGE       (4 * KiB)
#define PATTERN_STRIDE     (4 * KiB)

/* Calls visit(block, from, to, seed) over the patterned regions of a block of `size`
 * bytes that lie below `limit`; returns the first mismatch visit reports, or SIZE_MAX. */
typedef size_t (*pattern_visitor)(void *block, size_t from, size_t to, uint64_t seed);

static inline size_t pattern_visit(void *block, size_t size, size_t limit, uint64_t seed,
                                   pattern_visitor visit)
{
    size_t end = size < limit ? size : limit;
    if (size <= PATTERN_FULL_LIMIT)
        return visit(block, 0, end, seed);
    size_t result = visit(block, 0, PATTERN_EDGE < end ? PATTERN_EDGE : end, seed);
    for (size_t at = PATTERN_STRIDE; result == SIZE_MAX && at + 8 <= size - PATTERN_EDGE;
         at += PATTERN_STRIDE)
        if (at + 8 <= end)
            result = visit(block, at, at + 8, seed);
    if (result == SIZE_MAX && size - PATTERN_EDGE < end)
        result = visit(block, size - PATTERN_EDGE, end, seed);
    return result;
}

static inline size_t pattern_fill_visitor(void *block, size_t from, size_t to, uint64_t seed)
{
    pattern_fill_range(block, from, to, seed);
    return SIZE_MAX;
}

static inline size_t pattern_check_visitor(void *block, size_t from, size_t to, uint64_t seed)
{
    return pattern_mismatch_range(block, from, to, seed);
}

static inline size_t zero_check_visitor(void *block, size_t from, size_t to, uint64_t seed)
{
    (void)seed;
    const uint8_t *bytes = block;
    for (size_t i = from; i < to; i++)
        if (bytes[i] != 0)
            return i;
    return SIZE_MAX;
}

/* Patterns the sampled regions of a block (all of it when small). */
static inline void pattern_fill(void *block, size_t size, uint64_t seed)
{
    pattern_visit(block, size, size, seed, pattern_fill_visitor);
}

/* The first mismatching offset among the sampled regions of a block of `size` bytes that
 * lie below `limit` (pass size itself to check it all), or SIZE_MAX when intact. */
static inline size_t pattern_mismatch(const void *block, size_t size, size_t limit,
                                      uint64_t seed)
{
    return pattern_visit((void *)block, size, limit, seed, pattern_check_visitor);
}

/* The first non-zero offset among the sampled regions, or SIZE_MAX. */
static inline size_t zero_mismatch(const void *block, size_t size)
{
    return pattern_visit((void *)block, size, size, 0, zero_check_visitor);
}

/* A seed for the block in `slot` at its `generation`, never the same for two pairs. */
static inline uint64_t pattern_seed(uint64_t slot, uint64_t generation)
{
    return random_seed((slot << 32) ^ generation);
}

/* Writes to a block that is freed right after are dead stores the compiler may delete
 * (it knows what free means); this makes them observable so they really reach memory. */
static inline void keep_writes(const void *block)
{
    __asm__ __volatile__("" : : "r"(block) : "memory");
}

/* Fills `size` bytes with `byte` in a way that survives an immediately following free. */
static inline void fill_bytes(void *block, int byte, size_t size)
{
    memset(block, byte, size);
    keep_writes(block);
}

static inline bool is_aligned(const void *pointer, size_t alignment)
{
    return ((uintptr_t)pointer & (alignment - 1)) == 0;
}

/* A block a stress test holds: where, how big, and the seed of its pattern. */
typedef struct {
    unsigned char *block;
    size_t size;
    uint64_t seed;
} held_block_t;

static inline void held_allocate(held_block_t *held, size_t size, uint64_t seed)
{
    held->block = malloc(size);
    CHECK(held->block != NULL, "malloc(%zu) failed", size);
    held->size = size;
    held->seed = seed;
    pattern_fill(held->block, size, seed);
}

/* Checks a held block's pattern (naming `whose` block it is if it is corrupt), frees it. */
static inline void held_check_and_free(held_block_t *held, const char *whose)
{
    size_t bad = pattern_mismatch(held->block, held->size, held->size, held->seed);
    CHECK(bad == SIZE_MAX, "%s block %p (%zu bytes) corrupt at offset %zu", whose,
          (void *)held->block, held->size, bad);
    free(held->block);
    held->block = NULL;
}

/* The process's mapped (field 0) or resident (field 1) bytes, from /proc/self/statm. */
static inline size_t statm_bytes(int field)
{
    FILE *f = fopen("/proc/self/statm", "r");
    unsigned long values[2] = {0, 0};
    if (f != NULL) {
        if (fscanf(f, "%lu %lu", &values[0], &values[1]) != 2)
            values[0] = values[1] = 0;
        fclose(f);
    }
    return values[field] * (size_t)sysconf(_SC_PAGESIZE);
}

static inline size_t resident_bytes(void) { return statm_bytes(1); }
static inline size_t mapped_bytes(void) { return statm_bytes(0); }

/* A wait status as one number, the way a shell shows it: the exit code, or 128 + the
 * signal that killed the child. */
static inline int exit_code(int status)
{
    return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

/* Runs fn(arg) in a forked child whose stderr goes into a pipe, read to the end: the
 * first err_size - 1 bytes into err (NUL-ended), what does not fit (all of it when err
 * is NULL) on to this process's stderr, so nothing the child says is lost and it never
 * blocks on a full pipe. Returns the raw wait status (for WIFEXITED, WIFSIGNALED...) and
 * the child's pid in *pid_out when not NULL, or -1 when pipe, fork or waitpid fails. */
static inline int run_captured(int (*fn)(void *), void *arg, char *err, size_t err_size,
                               pid_t *pid_out)
{
    int fds[2];
    if (pipe(fds) != 0)
        return -1;
    fflush(NULL);
    pid_t pid = fork();
    if (pid < 0) {
        close(fds[0]);
        close(fds[1]);
        return -1;
    }
    if (pid == 0) {
        dup2(fds[1], 2);
        close(fds[0]);
        if (fds[1] != 2)
            close(fds[1]);
        _exit(fn(arg));
    }
    close(fds[1]);
    size_t len = 0;
    char chunk[4096];
    ssize_t n;
    while ((n = read(fds[0], chunk, sizeof chunk)) > 0) {
        size_t kept = 0;
        while (err != NULL && kept < (size_t)n && len + 1 < err_size)
            err[len++] = chunk[kept++];
        if (kept < (size_t)n)
            fwrite(chunk + kept, 1, (size_t)n - kept, stderr);
    }
    if (err != NULL && err_size > 0)
        err[len] = '\0';
    close(fds[0]);
    int status;
    if (waitpid(pid, &status, 0) != pid)
        return -1;
    if (pid_out != NULL)
        *pid_out = pid;
    return status;
}

/* Runs fn(arg) in a forked child (so limits and heap state stay there), its stderr passed
 * on, and returns its exit code, or 128 + the signal that killed it; -1 if it could not
 * be run. */
static inline int run_forked(int (*fn)(void *), void *arg)
{
    int status = run_captured(fn, arg, NULL, 0, NULL);
    return status < 0 ? -1 : exit_code(status);
}

/* What run_self hands its child: the arguments after the program's name and the
 * environment assignments, each list NULL-ended. */
typedef struct {
    const char *const *args;
    const char *const *assignments;
} self_command_t;

/* The child's side of run_self: sets the environment, then becomes this program anew
 * (options are read at start-up, so only a new program sees them). 127 if exec fails. */
static inline int exec_self(void *arg)
{
    const self_command_t *command = arg;
    size_t count = 0;
    while (command->args[count] != NULL)
        count++;
    const char *argv[count + 2];
    argv[0] = program_invocation_name;
    memcpy(argv + 1, command->args, (count + 1) * sizeof *argv);
    for (const char *const *a = command->assignments; a != NULL && *a != NULL; a++)
        putenv((char *)*a);
    execv("/proc/self/exe", (char *const *)argv);
    return 127;
}

/* Runs this test program again with args (NULL-ended; args[0] is usually a mode its main
 * looks for) and the "NAME=value" assignments (NULL-ended, or NULL) added to its
 * environment, its stderr captured as run_captured does. Returns the raw wait status,
 * or -1 when the child could not be started or waited for. */
static inline int run_self(const char *const *args, const char *const *assignments, char *err,
                           size_t err_size, pid_t *pid_out)
{
    self_command_t command = {args, assignments};
    return run_captured(exec_self, &command, err, err_size, pid_out);
}

#endif
