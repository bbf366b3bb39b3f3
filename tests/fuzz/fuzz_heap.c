/* A libFuzzer harness for the heap. The input is a program of valid calls (malloc, calloc,
 * realloc, reallocarray, free, the aligned family, purge, mallopt) over 64 slots and a
 * pool of many small blocks; an op may run on a helper thread instead, so blocks are
 * allocated, freed and resized across threads. The helper runs one op at a time while the
 * main thread waits, which keeps every run deterministic. Each block carries a pattern of
 * its own, checked before it is freed or moved, so any abort, sanitizer report or failed
 * check is a bug in the allocator. Links the internals (no libc names), so the sanitizers
 * and libFuzzer keep the system malloc. See README.md for the input format. */
#include "internal.h"

#include <errno.h>
#include <malloc.h>
#include <pthread.h>
#include <semaphore.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define SLOTS 64
#define BULK_MAX 16384   /* pool blocks alive at once: enough to fill several pages */
#define BULK_BATCH 4096  /* pool blocks one op allocates at most */
#define BULK_BYTES ((size_t)32 << 20) /* and their total size */
#define BULK_EXTENT 64   /* bytes patterned at the start of a pool block */
#define FULL_MAX 4096    /* blocks up to this are patterned whole ... */
#define EDGE 1024        /* larger ones this much at each end ... */
#define PROBE 16         /* ... and this much at every 64 KiB slice boundary between */
#define ERRNO_MARK 12345 /* errno before free, which must leave it alone */

/* ---- the blocks the program holds --------------------------------------------------- */

/* A live block: what was asked for, which bytes carry its pattern and which pattern. */
typedef struct {
  uint8_t *p;
  size_t size;   /* bytes requested */
  size_t extent; /* bytes patterned: the usable size (or BULK_EXTENT of it) */
  uint32_t seed;
} block_t;

static block_t slots[SLOTS];
static block_t bulk[BULK_MAX];
static size_t bulk_count;
static uint32_t seed_counter;
static long initial_threshold; /* VMALLOC_MMAP_THRESHOLD as the process started */
static bool trace;             /* FUZZ_HEAP_TRACE set: print each op as it runs */

/* ---- reporting ---------------------------------------------------------------------- */

static size_t op_number;         /* which op of the input is running */
static const char *op_name = ""; /* and its name, for the report */
static __thread const char *thread_name = "main";

/* One line naming the op and what went wrong, then abort: libFuzzer saves the input. */
static __attribute__((noreturn, format(printf, 1, 2))) void fail(const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  fprintf(stderr, "fuzz_heap: op %zu (%s on the %s thread): ", op_number, op_name,
          thread_name);
  vfprintf(stderr, fmt, ap);
  fputc('\n', stderr);
  va_end(ap);
  abort();
}

#define CHECK(e, ...)                                                                     \
  do {                                                                                    \
    if (!(e))                                                                             \
      fail(__VA_ARGS__);                                                                  \
  } while (0)

/* ---- patterns ----------------------------------------------------------------------- */

/* The pattern loops carry no coverage feedback worth having and, instrumented, took most
 * of the run time: leave them to the sanitizers alone. */
#define UNCOVERED __attribute__((no_sanitize("coverage")))

/* Bytes 8i to 8i+7 of a block with this seed: a hash, so that a block copied or
 * overlapped at any other offset, or another block's bytes, do not match. */
UNCOVERED static inline uint64_t pattern_word(uint32_t seed, size_t i) {
  uint64_t x = (i + 1) * 0x9e3779b97f4a7c15u ^ (seed + 1) * 0xbf58476d1ce4e5b9u;
  x ^= x >> 31;
  x *= 0x94d049bb133111ebu;
  return x ^ (x >> 29);
}

/* Byte `offset` of the pattern. */
UNCOVERED static inline uint8_t pattern(uint32_t seed, size_t offset) {
  return (uint8_t)(pattern_word(seed, offset / 8) >> (offset % 8 * 8));
}

typedef enum { FILL, VERIFY, ZERO } pass_t;

/* Applies pass to byte i; false if it is wrong. */
UNCOVERED static inline bool pass_byte(uint8_t *p, size_t i, uint32_t seed, pass_t pass) {
  if (pass == FILL)
    p[i] = pattern(seed, i);
  return pass == FILL || p[i] == (pass == ZERO ? 0 : pattern(seed, i));
}

/* Applies pass to bytes [from, to) below limit, a word at a time where it can; returns
 * the offset of the first wrong byte, or SIZE_MAX. */
UNCOVERED static size_t pass_range(uint8_t *p, size_t from, size_t to, size_t limit,
                                   uint32_t seed, pass_t pass) {
  if (to > limit)
    to = limit;
  size_t i = from;
  for (; i < to && i % 8 != 0; i++)
    if (!pass_byte(p, i, seed, pass))
      return i;
  for (; i + 8 <= to; i += 8) {
    uint64_t want = pass == ZERO ? 0 : pattern_word(seed, i / 8), word;
    if (pass == FILL) {
      memcpy(p + i, &want, 8);
      continue;
    }
    memcpy(&word, p + i, 8);
    if (word != want)
      break; /* the byte loop below finds which */
  }
  for (; i < to; i++)
    if (!pass_byte(p, i, seed, pass))
      return i;
  return SIZE_MAX;
}

/* Applies pass to the bytes a pattern covers in a block of `extent` bytes, those below
 * limit: all of a small block; the two ends of a large one and a probe at every slice
 * boundary between them (so a huge block costs a page fault per 64 KiB, not per 4 KiB).
 * Returns the offset of the first wrong byte, or SIZE_MAX. */
static size_t pass_block(uint8_t *p, size_t extent, size_t limit, uint32_t seed, pass_t pass) {
  if (limit > extent)
    limit = extent;
  if (extent <= FULL_MAX)
    return pass_range(p, 0, extent, limit, seed, pass);
  size_t bad = pass_range(p, 0, EDGE, limit, seed, pass);
  for (size_t at = VM_SLICE_SIZE; bad == SIZE_MAX && at + PROBE <= extent - EDGE;
       at += VM_SLICE_SIZE)
    bad = pass_range(p, at, at + PROBE, limit, seed, pass);
  if (bad == SIZE_MAX)
    bad = pass_range(p, extent - EDGE, extent, limit, seed, pass);
  return bad;
}

/* Checks that the first `limit` bytes of b's pattern are intact at p. */
static void verify(const block_t *b, const uint8_t *p, size_t limit, const char *when) {
  size_t bad = pass_block((uint8_t *)p, b->extent, limit, b->seed, VERIFY);
  CHECK(bad == SIZE_MAX,
        "%s: block %p (%zu bytes asked, %zu patterned) corrupt at offset %zu: "
        "0x%02x, expected 0x%02x",
        when, (const void *)p, b->size, b->extent, bad, p[bad], pattern(b->seed, bad));
}

/* ---- calls and their checks --------------------------------------------------------- */

static bool is_pow2(size_t x) { return x != 0 && (x & (x - 1)) == 0; }

/* Checks a call that must fail: NULL, and errno set to `expected`. */
static void check_failed(const void *p, int expected, size_t size) {
  CHECK(p == NULL, "%zu bytes cannot be had, yet got %p", size, p);
  CHECK(errno == expected, "failed for %zu bytes with errno %d, expected %d", size, errno,
        expected);
}

/* Takes a fresh block of `size` bytes into b: checks that it is there, aligned, as large
 * as asked, zeroed if it should be, then patterns its usable bytes (or the first
 * BULK_EXTENT of them, for a pool block). */
static void take_block(block_t *b, void *p, size_t size, size_t alignment, bool zeroed,
                       bool pool) {
  CHECK(p != NULL, "no block for %zu bytes (alignment %zu, errno %d)", size, alignment, errno);
  if (alignment < VM_ALIGN)
    alignment = VM_ALIGN;
  CHECK((uintptr_t)p % alignment == 0, "block %p for %zu bytes is not aligned to %zu", p, size,
        alignment);
  size_t usable = vm_usable_size(p);
  CHECK(usable >= size, "block %p for %zu bytes has only %zu usable", p, size, usable);
  /* a huge block may get a cached mapping of up to four times its size (segment.c) */
  CHECK(usable <= 4 * size + 2 * VM_SLICE_SIZE,
        "block %p for %zu bytes (alignment %zu) claims %zu usable", p, size, alignment, usable);
  if (zeroed) {
    size_t bad = pass_block(p, size, size, 0, ZERO);
    CHECK(bad == SIZE_MAX, "calloc block %p of %zu bytes not zero at offset %zu", p, size, bad);
  }
  b->p = p;
  b->size = size;
  b->extent = pool && usable > BULK_EXTENT ? BULK_EXTENT : usable;
  b->seed = ++seed_counter;
  pass_block(p, b->extent, b->extent, b->seed, FILL);
}

/* Checks and frees b's block, if any; free must keep errno as it was. */
static void release(block_t *b) {
  if (b->p == NULL)
    return;
  verify(b, b->p, b->extent, "before free");
  errno = ERRNO_MARK;
  vm_free(b->p);
  CHECK(errno == ERRNO_MARK, "free(%p) changed errno to %d", (void *)b->p, errno);
  b->p = NULL;
}

/* Resizes b's block (or makes one, if the slot is empty) to count * elem bytes with
 * reallocarray, or with realloc, checking that the common prefix survived and that a
 * failure left the block as it was. */
static void resize(block_t *b, size_t count, size_t elem, bool array) {
  size_t size;
  bool overflow = __builtin_mul_overflow(count, elem, &size);
  if (b->p != NULL)
    verify(b, b->p, b->extent, "before realloc");
  errno = 0;
  uint8_t *q = array ? vm_reallocarray(b->p, count, elem) : vm_realloc(b->p, size);
  if (overflow || size > VM_MAX_REQUEST) {
    check_failed(q, ENOMEM, size);
    if (b->p != NULL)
      verify(b, b->p, b->extent, "after failed realloc");
    return;
  }
  if (size == 0 && b->p != NULL) { /* glibc: realloc(p, 0) frees p */
    CHECK(q == NULL, "realloc(%p, 0) returned %p", (void *)b->p, (void *)q);
    b->p = NULL;
    return;
  }
  if (b->p != NULL) {
    CHECK(q != NULL, "realloc(%p, %zu) failed (errno %d)", (void *)b->p, size, errno);
    verify(b, q, b->size < size ? b->size : size, "after realloc");
  }
  take_block(b, q, size, VM_ALIGN, false, false);
}

/* ---- the program -------------------------------------------------------------------- */

typedef enum {
  OP_MALLOC, OP_CALLOC, OP_REALLOC, OP_REALLOCARRAY, OP_FREE, OP_POSIX_MEMALIGN,
  OP_ALIGNED_ALLOC, OP_MEMALIGN, OP_PAGE_ALIGNED, OP_BULK_ALLOC, OP_BULK_FREE, OP_CHECK,
  OP_PURGE, OP_RARE,
} op_kind_t;

static const char *const op_names[] = {
  "malloc", "calloc", "realloc", "reallocarray", "free", "posix_memalign", "aligned_alloc",
  "memalign", "valloc/pvalloc", "pool alloc", "pool free", "check", "purge",
  "mallopt/helper exit",
};

/* The low 5 bits of an op's first byte choose the op, weighted by how often each shows
 * up in this table; the top 3 bits all set run it on the helper thread. */
static const uint8_t op_table[32] = {
  OP_MALLOC, OP_MALLOC, OP_MALLOC, OP_MALLOC, OP_MALLOC, OP_MALLOC, OP_MALLOC, OP_MALLOC,
  OP_MALLOC, OP_CALLOC, OP_CALLOC, OP_REALLOC, OP_REALLOC, OP_REALLOC, OP_REALLOC,
  OP_REALLOCARRAY, OP_FREE, OP_FREE, OP_FREE, OP_FREE, OP_FREE, OP_POSIX_MEMALIGN,
  OP_ALIGNED_ALLOC, OP_MEMALIGN, OP_PAGE_ALIGNED, OP_BULK_ALLOC, OP_BULK_ALLOC, OP_BULK_FREE,
  OP_BULK_FREE, OP_CHECK, OP_PURGE, OP_RARE,
};

/* One decoded op: every operand it may use, read from the input whether used or not. */
typedef struct {
  op_kind_t kind;
  bool remote;      /* run on the helper thread */
  unsigned slot;
  size_t size;      /* bytes, or bytes per element */
  size_t count;     /* elements (calloc, reallocarray), or pool blocks */
  size_t alignment;
  unsigned mode;    /* a byte of op-specific choices */
} op_t;

typedef struct {
  const uint8_t *data;
  size_t size, pos;
} input_t;

/* The next input byte; zeros once the input is used up. */
static unsigned take8(input_t *in) { return in->pos < in->size ? in->data[in->pos++] : 0; }
static size_t take16(input_t *in) { return take8(in) | (size_t)take8(in) << 8; }
static size_t take24(input_t *in) { return take16(in) | (size_t)take8(in) << 16; }

/* A request size: mostly small, sometimes medium or large, rarely huge (a dedicated
 * mapping), at the edges of the classes and thresholds, or beyond what can be had. */
static size_t take_size(input_t *in) {
  unsigned kind = take8(in) % 32;
  if (kind < 14)
    return take8(in);
  if (kind < 20)
    return take16(in) % (2 * FULL_MAX + 1);
  if (kind < 24)
    return take24(in) % (VM_MEDIUM_MAX + 4097);
  if (kind < 25) { /* a class size, or one byte either side of it */
    size_t size = vm_class_size[1 + take8(in) % VM_CLASS_COUNT];
    return size + take8(in) % 3 - 1;
  }
  if (kind < 28)
    return VM_MEDIUM_MAX + take24(in) % (VM_LARGE_MAX - VM_MEDIUM_MAX + VM_SLICE_SIZE);
  if (kind < 29) { /* around the huge threshold and the segment size */
    static const size_t edges[] = {VM_LARGE_MAX, VM_SEGMENT_SIZE - VM_SLICE_SIZE,
                                   VM_SEGMENT_SIZE, 2 * VM_SEGMENT_SIZE};
    size_t edge = edges[take8(in) % 4];
    return edge + take8(in) - 128;
  }
  if (kind < 31)
    return VM_LARGE_MAX + take24(in) % (6 << 20);
  unsigned rare = take8(in) % 8;
  if (rare < 5)
    return ((size_t)8 << 20) + take16(in) * 64; /* 8 to 12 MiB */
  static const size_t too_big[] = {SIZE_MAX - 255, VM_MAX_REQUEST + 1, PTRDIFF_MAX - 255};
  return too_big[rare - 5] + take8(in);
}

/* An alignment: a power of two up to 64 KiB, one time in eight 128 KiB to 8 MiB (a large
 * block or a dedicated mapping), one time in eight not a power of two at all. */
static size_t take_alignment(input_t *in) {
  unsigned b = take8(in), low = b & 31;
  if (b >> 5 == 6)
    return (size_t)1 << (17 + low % 7);
  size_t alignment = (size_t)1 << (low % 17);
  return b >> 5 == 7 ? alignment + 1 + low % 7 * 8 : alignment;
}

/* Reads the next op: a byte for the op, then its operands. */
static void take_op(input_t *in, op_t *op) {
  unsigned b = take8(in);
  op->kind = (op_kind_t)op_table[b % 32];
  op->remote = b >> 5 == 7;
  op->slot = take8(in) % SLOTS;
  op->mode = take8(in);
  op->count = 0;
  op->alignment = 0;
  op->size = 0;
  switch (op->kind) {
  case OP_CALLOC:
  case OP_REALLOCARRAY:
    op->size = take_size(in);
    op->count = 1 + op->mode % 8;
    /* count elements that add up to the size asked for or a little more (so a size
     * that cannot be had stays one) */
    op->size = op->size / op->count + (op->size % op->count != 0);
    if (op->mode >= 0xf8) /* one time in 32: a count * size that overflows */
      op->count = SIZE_MAX / 2 + 1 + op->mode % 4;
    if (op->mode >= 0xf8 && op->size < 2)
      op->size = 2;
    break;
  case OP_MALLOC:
  case OP_REALLOC:
  case OP_PAGE_ALIGNED:
    op->size = take_size(in);
    break;
  case OP_POSIX_MEMALIGN:
  case OP_ALIGNED_ALLOC:
  case OP_MEMALIGN:
    op->alignment = take_alignment(in);
    op->size = take_size(in);
    break;
  case OP_BULK_ALLOC:
    op->size = op->mode < 192 ? take8(in) : take16(in) % (VM_MEDIUM_MAX + 1);
    op->count = take16(in); /* half the time up to 256 blocks, else up to BULK_BATCH */
    op->count = 1 + op->count % (op->count & 0x8000 ? BULK_BATCH : 256);
    break;
  case OP_RARE:
    op->size = take24(in);
    break;
  default:
    break;
  }
}

/* Allocates op->count pool blocks of op->size bytes (as many as fit). */
static void bulk_alloc(const op_t *op) {
  size_t count = op->count;
  if (count > BULK_MAX - bulk_count)
    count = BULK_MAX - bulk_count;
  if (count > BULK_BYTES / (op->size + 1))
    count = BULK_BYTES / (op->size + 1);
  for (size_t i = 0; i < count; i++) {
    block_t *b = &bulk[bulk_count++];
    if (op->mode % 4 == 0)
      take_block(b, vm_calloc(1, op->size), op->size, VM_ALIGN, true, true);
    else
      take_block(b, vm_malloc(op->size), op->size, VM_ALIGN, false, true);
  }
}

/* Frees a selection of the pool: every stride-th block from a start, oldest or newest
 * first, so pages empty in different orders and full pages get blocks back. */
static void bulk_free(const op_t *op) {
  size_t stride = 1 + op->mode % 4;
  size_t start = (op->mode >> 2) % stride;
  bool newest_first = op->mode & 0x10;
  for (size_t k = 0; k < bulk_count; k++) {
    size_t i = newest_first ? bulk_count - 1 - k : k;
    if (i % stride == start)
      release(&bulk[i]);
  }
  size_t kept = 0;
  for (size_t i = 0; i < bulk_count; i++)
    if (bulk[i].p != NULL)
      bulk[kept++] = bulk[i];
  bulk_count = kept;
}

/* The calling thread's heap is consistent, and every block is intact and still as large
 * as when it was made. */
static void check_all(void) {
  CHECK(vm_heap_is_valid(vm_heap_tls), "vm_heap_is_valid() failed");
  for (size_t i = 0; i < SLOTS; i++) {
    if (slots[i].p == NULL)
      continue;
    verify(&slots[i], slots[i].p, slots[i].extent, "check");
    CHECK(vm_usable_size(slots[i].p) >= slots[i].size, "block %p shrank below %zu bytes",
          (void *)slots[i].p, slots[i].size);
  }
  for (size_t i = 0; i < bulk_count; i++)
    verify(&bulk[i], bulk[i].p, bulk[i].extent, "check");
}

static void helper_stop(void);

/* Runs one op on the calling thread. */
static void run(const op_t *op) {
  block_t *b = &slots[op->slot];
  size_t size = op->size, alignment = op->alignment;
  void *p;
  op_name = op_names[op->kind];
  switch (op->kind) {
  case OP_MALLOC:
    release(b);
    errno = 0;
    p = vm_malloc(size);
    if (size > VM_MAX_REQUEST)
      check_failed(p, ENOMEM, size);
    else
      take_block(b, p, size, VM_ALIGN, false, false);
    break;
  case OP_CALLOC: {
    release(b);
    size_t total;
    bool overflow = __builtin_mul_overflow(op->count, size, &total);
    errno = 0;
    p = vm_calloc(op->count, size);
    if (overflow || total > VM_MAX_REQUEST)
      check_failed(p, ENOMEM, total);
    else
      take_block(b, p, total, VM_ALIGN, true, false);
    break;
  }
  case OP_REALLOC:
    resize(b, 1, size, false);
    break;
  case OP_REALLOCARRAY:
    resize(b, op->count, size, true);
    break;
  case OP_FREE:
    if (b->p == NULL) {
      vm_free(NULL);
      break;
    }
    release(b);
    break;
  case OP_POSIX_MEMALIGN: {
    release(b);
    void *out = &out; /* must stay as it is when the call fails */
    int error = vm_posix_memalign(&out, alignment, size);
    if (!is_pow2(alignment) || alignment < sizeof(void *)) {
      CHECK(error == EINVAL && out == &out, "posix_memalign(%zu, %zu) gave %d", alignment,
            size, error);
    } else if (size > VM_MAX_REQUEST) {
      CHECK(error == ENOMEM && out == &out, "posix_memalign(%zu, %zu) gave %d", alignment,
            size, error);
    } else {
      CHECK(error == 0, "posix_memalign(%zu, %zu) failed with %d", alignment, size, error);
      take_block(b, out, size, alignment, false, false);
    }
    break;
  }
  case OP_ALIGNED_ALLOC:
  case OP_MEMALIGN:
    release(b);
    errno = 0;
    if (op->kind == OP_ALIGNED_ALLOC) {
      p = vm_aligned_alloc(alignment, size);
      if (!is_pow2(alignment)) {
        check_failed(p, EINVAL, size);
        break;
      }
    } else {
      p = vm_memalign(alignment, size);
      if (!is_pow2(alignment)) /* memalign rounds it up to one */
        alignment = (size_t)1 << (64 - __builtin_clzl(alignment - 1));
    }
    if (size > VM_MAX_REQUEST)
      check_failed(p, ENOMEM, size);
    else
      take_block(b, p, size, alignment, false, false);
    break;
  case OP_PAGE_ALIGNED: {
    release(b);
    size_t page = vm_os_page_size();
    bool whole_pages = op->mode & 1; /* pvalloc: n rounded up to whole pages, 0 to one */
    errno = 0;
    p = whole_pages ? vm_pvalloc(size) : vm_valloc(size);
    if (size > VM_MAX_REQUEST)
      check_failed(p, ENOMEM, size);
    else
      take_block(b, p, whole_pages ? (size == 0 ? page : vm_align_up(size, page)) : size, page,
                 false, false);
    break;
  }
  case OP_BULK_ALLOC:
    bulk_alloc(op);
    break;
  case OP_BULK_FREE:
    bulk_free(op);
    break;
  case OP_CHECK:
    check_all();
    break;
  case OP_PURGE:
    vm_purge_collect(op->mode & 1);
    if (op->mode & 2)
      CHECK(vm_heap_is_valid(vm_heap_tls), "vm_heap_is_valid() failed after purge");
    break;
  case OP_RARE:
    if (op->mode & 1) {
      helper_stop(); /* its heap's segments are abandoned, blocks and all */
    } else {
      /* mallopt(M_MMAP_THRESHOLD) between its bounds, or back to where it started */
      int value = op->mode & 2 ? (int)initial_threshold + 1 : (int)(op->size % (3 << 20));
      CHECK(vm_mallopt(M_MMAP_THRESHOLD, value) == 1, "mallopt(M_MMAP_THRESHOLD, %d) refused",
            value);
    }
    break;
  }
}

/* ---- the helper thread -------------------------------------------------------------- */

/* One op at a time: the main thread posts `go` and waits on `done`, so the two never run
 * at once and the helper's heap sees the same calls on every run of an input. */
static pthread_t helper;
static bool helper_running;
static sem_t helper_go, helper_done;
static const op_t *helper_op; /* NULL: exit */

static void *helper_main(void *arg) {
  (void)arg;
  thread_name = "helper";
  for (;;) {
    while (sem_wait(&helper_go) != 0)
      continue;
    if (helper_op == NULL)
      return NULL;
    run(helper_op);
    sem_post(&helper_done);
  }
}

/* Runs op on the helper thread, starting one if there is none. */
static void helper_run(const op_t *op) {
  if (!helper_running) {
    CHECK(pthread_create(&helper, NULL, helper_main, NULL) == 0, "pthread_create failed");
    helper_running = true;
  }
  helper_op = op;
  sem_post(&helper_go);
  while (sem_wait(&helper_done) != 0)
    continue;
}

/* Ends the helper thread: its heap goes back to the pool, its segments are abandoned. */
static void helper_stop(void) {
  if (!helper_running)
    return;
  helper_op = NULL;
  sem_post(&helper_go);
  pthread_join(helper, NULL);
  helper_running = false;
}

/* ---- libFuzzer's entry points ------------------------------------------------------- */

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerInitialize(int *argc, char ***argv) {
  (void)argc;
  (void)argv;
  sem_init(&helper_go, 0, 0);
  sem_init(&helper_done, 0, 0);
  vm_free(vm_malloc(1)); /* the options are read on the first call */
  initial_threshold = vm_option(VM_OPTION_MMAP_THRESHOLD);
  trace = getenv("FUZZ_HEAP_TRACE") != NULL;
  return 0;
}

/* Runs the input's ops, then frees everything, ends the helper, restores the threshold
 * and gives back every page, so that the next input starts from an empty heap and a
 * crash input reproduces on its own. */
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  input_t in = {data, size, 0};
  for (op_number = 0; in.pos < in.size; op_number++) {
    op_t op;
    take_op(&in, &op);
    if (trace)
      fprintf(stderr, "op %zu: %s%s slot %u size %zu count %zu alignment %zu mode 0x%02x\n",
              op_number, op_names[op.kind], op.remote && op.kind != OP_RARE ? " (helper)" : "",
              op.slot, op.size, op.count, op.alignment, op.mode);
    if (op.remote && op.kind != OP_RARE)
      helper_run(&op);
    else
      run(&op);
  }
  op_name = "cleanup";
  for (size_t i = 0; i < SLOTS; i++)
    release(&slots[i]);
  for (size_t i = 0; i < bulk_count; i++)
    release(&bulk[i]);
  bulk_count = 0;
  helper_stop();
  vm_option_set(VM_OPTION_MMAP_THRESHOLD, initial_threshold);
  CHECK(vm_heap_is_valid(vm_heap_tls), "vm_heap_is_valid() failed after freeing everything");
  /* what vm_purge_collect(true) does but for the system calls, which would cost a page
   * fault per page touched in the next input */
  vm_segment_tidy_abandoned();
  vm_heap_collect_pages(vm_heap_tls, true);
  CHECK(vm_heap_is_valid(vm_heap_tls), "vm_heap_is_valid() failed after the final collect");
  return 0;
}
