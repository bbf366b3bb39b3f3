/* Build switches, attributes, checks, small inline helpers, and every cross-file
 * declaration, grouped by the file that owns it. Every name here is hidden: only
 * override.c exports anything. */
#ifndef VM_INTERNAL_H
#define VM_INTERNAL_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifndef VM_DEBUG
#define VM_DEBUG 0 /* 0 release, 1 cheap invariants, 2 list walks, 3 everything */
#endif

#define vm_likely(x) __builtin_expect(!!(x), 1)
#define vm_unlikely(x) __builtin_expect(!!(x), 0)
#define VM_NOINLINE __attribute__((noinline))
#define VM_COLD __attribute__((cold, noinline))
#define VM_INLINE static inline __attribute__((always_inline))

/* Graded asserts: type-checked in every build, free when VM_DEBUG is below the grade. */
#define vm_assert(grade, e)                                                             \
  do {                                                                                  \
    if (VM_DEBUG >= (grade) && !(e))                                                    \
      vm_diag_assert_failed(#e, __FILE__, __LINE__);                                    \
  } while (0)

#include "types.h"

/* ---- geometry ---------------------------------------------------------------------- */

#define VM_SEGMENT_SHIFT 22 /* 4 MiB: small enough to reserve in step with need */
#define VM_SEGMENT_SIZE ((size_t)1 << VM_SEGMENT_SHIFT)
#define VM_SEGMENT_MASK (VM_SEGMENT_SIZE - 1)
#define VM_SLICE_SHIFT 16 /* 64 KiB: one small page */
#define VM_SLICE_SIZE ((size_t)1 << VM_SLICE_SHIFT)
#define VM_SLICES ((int)(VM_SEGMENT_SIZE / VM_SLICE_SIZE)) /* 64: one bit each in a word */
#define VM_FIRST_SLICE 1 /* slice 0 holds the segment header and page descriptors */
_Static_assert(VM_DIRECT_SLOTS == 8192 / 16 + 1, "direct table covers 0..VM_DIRECT_MAX");

#define VM_ALIGN 16                      /* every block is at least this aligned */
#define VM_DIRECT_MAX 8192               /* sizes served by the heap's direct table */
#define VM_MEDIUM_MAX ((size_t)128 << 10) /* the largest size class */
#define VM_LARGE_MAX ((size_t)2 << 20)    /* beyond this a block gets its own mapping */
#define VM_MEDIUM_PAGE_SLICES 9 /* pages of classes above 8 KiB: 576 KiB, 7 fill a segment */
/* Requests above this cannot be satisfied and fail early with ENOMEM, which also keeps
 * every size computation below free of overflow. */
#define VM_MAX_REQUEST ((size_t)PTRDIFF_MAX - 2 * VM_SEGMENT_SIZE)

/* ---- tiny helpers ------------------------------------------------------------------ */

VM_INLINE uintptr_t vm_align_up(uintptr_t x, uintptr_t align) {
  return (x + align - 1) & ~(align - 1);
}
VM_INLINE bool vm_is_pow2(size_t x) { return x != 0 && (x & (x - 1)) == 0; }

/* The segment that would hold p: its size alignment makes this a mask. */
VM_INLINE vm_segment_t *vm_segment_of(const void *p) {
  return (vm_segment_t *)((uintptr_t)p & ~VM_SEGMENT_MASK);
}

/* The page descriptor that owns p: slices inside a multi-slice page point back. */
/* The list other threads free the page's blocks onto. */
VM_INLINE _Atomic(uintptr_t) *vm_page_thread_free(const vm_page_t *page) {
  vm_segment_t *segment = vm_segment_of(page);
  return &segment->remote[page - segment->pages].thread_free;
}
VM_INLINE vm_page_t *vm_page_of(vm_segment_t *segment, const void *p) {
  /* (p - segment) >> VM_SLICE_SHIFT descriptors, without the subtraction */
  uintptr_t offset = ((uintptr_t)p >> (VM_SLICE_SHIFT - VM_PAGE_DESCRIPTOR_SHIFT)) &
                     ((uintptr_t)(VM_SLICES - 1) << VM_PAGE_DESCRIPTOR_SHIFT);
  vm_page_t *slice = (vm_page_t *)((uint8_t *)segment->pages + offset);
  return (vm_page_t *)((uint8_t *)slice - slice->head_offset);
}

/* Whether p starts one of the blocks a page has carved (see update_block_limit in
 * page.c). Any thread may ask: the owner only raises the limit while blocks are out. */
VM_INLINE bool vm_page_is_block_start(vm_page_t *page, const void *p) {
  uint64_t offset = (uint32_t)((uint32_t)(uintptr_t)p - page->area_low);
  return offset * page->block_magic <
         atomic_load_explicit(&page->block_limit, memory_order_relaxed);
}

/* ---- lock (vm_lock_t is in types.h) ------------------------------------------------ */
void vm_lock_slow(vm_lock_t *lock);
void vm_lock_wake(vm_lock_t *lock);
VM_INLINE void vm_lock(vm_lock_t *lock) {
  int expected = 0;
  if (!atomic_compare_exchange_strong_explicit(&lock->held, &expected, 1,
                                               memory_order_acquire, memory_order_relaxed))
    vm_lock_slow(lock);
}
VM_INLINE bool vm_trylock(vm_lock_t *lock) {
  int expected = 0;
  return atomic_compare_exchange_strong_explicit(&lock->held, &expected, 1,
                                                 memory_order_acquire, memory_order_relaxed);
}
VM_INLINE void vm_unlock(vm_lock_t *lock) {
  if (atomic_exchange_explicit(&lock->held, 0, memory_order_release) == 2)
    vm_lock_wake(lock);
}

/* ---- os.c -------------------------------------------------------------------------- */
void vm_os_init(bool huge_pages);
size_t vm_os_page_size(void);
int64_t vm_os_now_ms(void);
bool vm_os_strict_commit(void);
bool vm_os_huge_pages(void);
void *vm_os_reserve_aligned(size_t size, size_t alignment, bool reserve); /* NULL: failed */
void *vm_os_map(size_t size);                                            /* NULL: failed */
void vm_os_release(void *p, size_t size);
void vm_os_release_aligned(void *p, size_t size);
bool vm_os_commit(void *p, size_t size);
bool vm_os_decommit(void *p, size_t size);
bool vm_os_guard(void *p, size_t size);
bool vm_os_unguard(void *p, size_t size);
vm_purge_result_t vm_os_purge(void *p, size_t size, bool now);
void vm_os_advise_huge(void *p, size_t size);
void *vm_os_remap_aligned(void *p, size_t old_size, size_t new_size, size_t alignment);
bool vm_os_resize_in_place(void *p, size_t old_size, size_t new_size);
size_t vm_os_resident_bytes(void *p, size_t size);
size_t vm_os_resident_bytes_by_part(void *p, size_t size, size_t part, size_t *per_part);
size_t vm_os_zero(void *p, size_t size);
bool vm_os_zero_held(void *p, size_t size, size_t *own);
void vm_os_zero_dropping(void *p, size_t size);
extern vm_os_stats_t vm_os_stats;

/* ---- registry.c -------------------------------------------------------------------- */
#define VM_REGISTRY_ADDR_BITS 47
/* One byte per segment-aligned address below 2^47: 32 MiB of zero-initialised data, of
 * which only the pages covering our segments are ever written (one page of it covers
 * 16 GiB of address space). Bytes rather than bits: free's test is then one load and no
 * bit arithmetic. */
#define VM_REGISTRY_ENTRIES ((uintptr_t)1 << (VM_REGISTRY_ADDR_BITS - VM_SEGMENT_SHIFT))
extern _Atomic uint8_t vm_registry_map[VM_REGISTRY_ENTRIES];
void vm_registry_add(vm_segment_t *segment);
void vm_registry_remove(vm_segment_t *segment);
/* Is p the start of a live segment of ours? One load; safe for any pointer value. */
VM_INLINE bool vm_registry_contains(const void *p) {
  uintptr_t index = (uintptr_t)p >> VM_SEGMENT_SHIFT;
  if (vm_unlikely(index >= VM_REGISTRY_ENTRIES))
    return false;
  return atomic_load_explicit(&vm_registry_map[index], memory_order_relaxed) != 0;
}

/* ---- sizeclass.c ------------------------------------------------------------------- */
extern const uint32_t vm_class_size[VM_CLASS_COUNT + 1];
extern const uint8_t vm_class_slices[VM_CLASS_COUNT + 1];
extern uint8_t vm_small_class[];
void vm_sizeclass_init(void); /* fills vm_small_class; vm_init_process calls it */
#define VM_SMALL_MAX 8192     /* the largest class of one-slice pages */
#define VM_SMALL_CLASSES 47   /* classes 1..47 are those up to VM_SMALL_MAX */
_Static_assert(VM_DIRECT_MAX == VM_SMALL_MAX, "the direct table covers the one-slice classes");
/* The smallest class whose blocks hold n bytes, n <= VM_MEDIUM_MAX: a table up to 8 KiB,
 * above that four classes per doubling. */
VM_INLINE unsigned vm_class_of(size_t n) {
  if (n <= VM_SMALL_MAX)
    return vm_small_class[(n + VM_ALIGN - 1) / VM_ALIGN];
  size_t w = n - 1;
  unsigned log2 = 63u - (unsigned)__builtin_clzl(w); /* n in (2^log2, 2^(log2+1)] */
  return VM_SMALL_CLASSES + 1u + (log2 - 13u) * 4u + (unsigned)((w >> (log2 - 2)) & 3);
}
/* The smallest class that holds n bytes in blocks aligned to `alignment` (a power of two,
 * at most VM_SLICE_SIZE, with n rounded up to it at most VM_MEDIUM_MAX). */
unsigned vm_class_of_aligned(size_t n, size_t alignment);

/* ---- segment.c --------------------------------------------------------------------- */
vm_page_t *vm_segment_page_alloc(vm_heap_t *heap, size_t slices, size_t align_slices);
bool vm_segment_make_room(vm_heap_t *heap, unsigned class_idx);
void vm_segment_page_free(vm_heap_t *heap, vm_page_t *page);
bool vm_segment_page_grow(vm_heap_t *heap, vm_page_t *page, size_t count);
vm_segment_t *vm_segment_huge_alloc(size_t size, size_t alignment, size_t *block_offset);
void vm_segment_huge_free(vm_segment_t *segment);
void vm_segment_huge_attach(vm_segment_t *segment);
bool vm_segment_huge_cache_resident(size_t bytes);
VM_INLINE size_t vm_segment_huge_usable(const vm_segment_t *segment) {
  return segment->size - segment->huge_block_offset - segment->huge_guard;
}
void vm_segment_huge_detach(vm_segment_t *segment);
bool vm_segment_huge_resize(vm_segment_t *segment, size_t new_size);
void vm_segment_abandon_all(vm_heap_t *heap);
bool vm_segment_hold_abandoned(vm_segment_t *segment);
void vm_segment_abandoned_gains_room(vm_segment_t *segment);
void vm_segment_tidy_abandoned(void);
void vm_segment_unhold_abandoned(vm_segment_t *segment);
bool vm_segment_release_cache(void);
void vm_segment_note_notify(vm_segment_t *segment, vm_page_t *page);
void vm_segment_collect_notified(vm_heap_t *heap);
void vm_segment_census(vm_census_t *census, bool measure);
bool vm_segment_adopt_all(vm_heap_t *heap);
void vm_segment_purge_tick(vm_heap_t *heap);
void vm_segment_postpone_purge(vm_heap_t *heap, int64_t ms);
void vm_segment_purge_shared(int64_t now, bool force);
size_t vm_segment_purge_everything(bool force);
size_t vm_segment_lazy_bytes(void); /* lazily purged, as the purge budget counts it */
void vm_segment_lock_all(void);
void vm_segment_unlock_all(bool in_child);
VM_INLINE uint8_t *vm_page_area(const vm_segment_t *segment, const vm_page_t *page) {
  return (uint8_t *)segment + (size_t)(page - segment->pages) * VM_SLICE_SIZE;
}

/* ---- page.c ------------------------------------------------------------------------ */
void *vm_page_malloc_slow(vm_heap_t *heap, size_t n);
void vm_page_init(vm_heap_t *heap, vm_page_t *page, unsigned class_idx);
void vm_page_set_block_size(vm_page_t *page, size_t size);
void vm_page_set_capacity(vm_page_t *page, uint16_t capacity);
uintptr_t vm_page_owner_word(const vm_heap_t *heap);
size_t vm_page_collect(vm_page_t *page);
bool vm_page_all_back(vm_page_t *page);
bool vm_page_offers_room(const vm_page_t *page);
void vm_page_retire(vm_heap_t *heap, vm_page_t *page);
void vm_page_free_generic(vm_page_t *page, void *p);
void vm_page_adopt(vm_heap_t *heap, vm_page_t *page);
bool vm_page_unfull_notified(vm_heap_t *heap, vm_page_t *page);
void vm_page_queue_remove(vm_heap_t *heap, vm_page_t *page);
void vm_heap_collect_pages(vm_heap_t *heap, bool force);
void vm_heap_resume(vm_heap_t *heap, int64_t parked_for_ms);
size_t vm_heap_purge_pages(vm_heap_t *heap, bool force);
void vm_heap_unpin_all(vm_heap_t *heap);
bool vm_page_is_valid(const vm_page_t *page);
vm_block_t *vm_page_block_containing(vm_page_t *page, const void *p);
bool vm_page_live_block_or_report(vm_page_t *page, const void *p, const char *where,
                                  bool freeing);

/* ---- heap.c ------------------------------------------------------------------------ */
extern __thread vm_heap_t *vm_heap_tls __attribute__((tls_model("initial-exec")));
extern vm_heap_t vm_heap_empty;
extern vm_page_t vm_page_empty;
vm_heap_t *vm_heap_for_thread(void); /* creates the calling thread's heap; NULL if it can't */
void vm_heap_direct_update(vm_heap_t *heap, unsigned class_idx);
void vm_heap_process_init(void);
void vm_heap_secrets_init(void);
bool vm_heap_is_valid(const vm_heap_t *heap);
void vm_heap_count(size_t *in_use, size_t *made, size_t *parked);
/* Whether heap's thread is alive: a hint for other threads, which may see it change. */
VM_INLINE bool vm_heap_running(const vm_heap_t *heap) {
  return __atomic_load_n(&heap->in_use, __ATOMIC_RELAXED) != 0;
}
void vm_heap_release_parked(int64_t now, bool force);
void vm_heap_lock_all(void);
void vm_heap_unlock_all(bool in_child);
void vm_heap_lock_backup(vm_heap_t **heap);
void vm_heap_unlock_backup(void);

/* ---- large.c ----------------------------------------------------------------------- */
void *vm_large_malloc(vm_heap_t *heap, size_t n, size_t alignment);
size_t vm_large_guard_bytes(const vm_page_t *page);
bool vm_large_grow_in_place(vm_segment_t *segment, void *p, size_t n);
void *vm_huge_malloc(size_t n, size_t alignment);
void *vm_huge_realloc(vm_segment_t *segment, size_t n);
void vm_huge_clear(vm_segment_t *segment, void *p, size_t n);
void vm_huge_dropped_from(vm_segment_t *segment, size_t offset); /* pages from offset on */
/* A huge mapping's new size: pages cut off leave what is known of its pages. */
VM_INLINE void vm_segment_huge_set_size(vm_segment_t *segment, size_t size) {
  segment->size = size;
  if (segment->huge_own_to > size)
    segment->huge_own_to = segment->huge_own_from = 0;
}
vm_segment_t *vm_segment_of_block(const void *p);

/* ---- purge.c ----------------------------------------------------------------------- */
bool vm_purge_collect(bool force);
int vm_purge_trim(size_t pad);
void vm_purge_background_ensure(void);
void vm_purge_fork_child(void);
/* The delays the schedule applies now: the options', lengthened while the program keeps
 * carving memory soon after the schedule dropped it (see purge.c). */
int64_t vm_purge_delay_ms(void);
int64_t vm_purge_escalate_ms(void);
void vm_purge_note_dropped(size_t bytes); /* by the schedule, not by a trim */
void vm_purge_note_reuse(size_t bytes, int64_t dropped_for_ms, int64_t now);
void vm_purge_relax(int64_t now); /* from the purge clock */
size_t vm_purge_reused_soon_bytes(void);

/* ---- alloc.c ----------------------------------------------------------------------- */
void *vm_alloc_slow(size_t n, size_t alignment);
/* Why free left its fast path. */
typedef enum { VM_FREE_OTHER, VM_FREE_RETIRE, VM_FREE_MAYBE_TWICE } vm_free_reason_t;
void vm_free_slow(vm_page_t *page, void *p, vm_free_reason_t reason);
void *vm_malloc(size_t n);
void vm_free(void *p);
void *vm_calloc(size_t count, size_t size);
void *vm_realloc(void *p, size_t n);
void *vm_reallocarray(void *p, size_t count, size_t size);
int vm_posix_memalign(void **out, size_t alignment, size_t n);
void *vm_aligned_alloc(size_t alignment, size_t n);
void *vm_memalign(size_t alignment, size_t n);
void *vm_valloc(size_t n);
void *vm_pvalloc(size_t n);
size_t vm_usable_size(const void *p);
void vm_free_sized(void *p, size_t n);
void vm_free_aligned_sized(void *p, size_t alignment, size_t n);
void *vm_heap_malloc_aligned(vm_heap_t *heap, size_t n, size_t alignment);

/* ---- free lists (checks: VMALLOC_CHECK) ------------------------------------------- */

/* The process's secrets, from the kernel's random bytes at start-up. A page's free list
 * stores next ^ (address of the link >> 12) ^ list_secret (safe-linking), so a pointer
 * written over a freed block decodes to garbage, which pop notices because it leaves
 * the segment; `freed_key` marks freed blocks. With VMALLOC_CHECK=0 both are 0 and the
 * reports are off. */
typedef struct {
  uintptr_t list_secret;
  uintptr_t freed_key;
} vm_secret_t;
extern vm_secret_t vm_secret;

/* Whether a block is freed, by the key that free writes into its second word and malloc
 * clears: a random 64-bit secret, which only a copy of freed memory can forge. No list
 * can confirm it: a freed block may be on its page's lists, in the quarantine, or in
 * another thread's foreign cache, which no other thread may read. */
VM_INLINE bool vm_page_block_is_freed(const vm_block_t *block) {
  return vm_secret.freed_key != 0 && block->freed == vm_secret.freed_key;
}

VM_INLINE vm_block_t *vm_block_next(const vm_block_t *block, uintptr_t secret) {
  return (vm_block_t *)((uintptr_t)block->next ^ ((uintptr_t)block >> 12) ^ secret);
}
VM_INLINE void vm_block_set_next(vm_block_t *block, const vm_block_t *next, uintptr_t secret) {
  block->next = (vm_block_t *)((uintptr_t)next ^ ((uintptr_t)block >> 12) ^ secret);
}
/* Whether a decoded next leaves the block's segment: the end of the list (NULL) or a
 * corrupt link. One test for both keeps pop short; vm_page_pop_last tells them apart. */
VM_INLINE bool vm_block_next_leaves(const vm_block_t *block, const vm_block_t *next) {
  return (((uintptr_t)next ^ (uintptr_t)block) >> VM_SEGMENT_SHIFT) != 0;
}

/* Never NULL: the block itself is handed out (so callers of vm_page_pop need no test). */
__attribute__((returns_nonnull)) void *vm_page_pop_last(vm_page_t *page, vm_block_t *block,
                                                         vm_block_t *next);

/* Takes the first block of a page's non-empty free list. */
VM_INLINE void *vm_page_pop(vm_page_t *page, vm_block_t *block, uintptr_t secret) {
  vm_block_t *next = vm_block_next(block, secret);
  if (vm_unlikely(vm_block_next_leaves(block, next)))
    return vm_page_pop_last(page, block, next);
  page->free = next;
  page->used++;
  block->freed = 0;
  return block;
}

/* A block of the class of n bytes from the class's current page, or NULL when n is past
 * the direct table (VM_DIRECT_MAX) or that page has none free. The table holds only empty
 * pages while blocks need canaries or counting, so those always get NULL here. */
VM_INLINE void *vm_heap_direct_pop(vm_heap_t *heap, size_t n) {
  if (vm_unlikely(n > VM_DIRECT_MAX))
    return NULL;
  vm_page_t *page = heap->direct[(n + VM_ALIGN - 1) / VM_ALIGN];
  vm_block_t *block = page->free;
  return vm_likely(block != NULL) ? vm_page_pop(page, block, heap->list_secret) : NULL;
}

/* The malloc fast path: TLS heap, direct table, pop. Everything else is vm_alloc_slow. */
VM_INLINE void *vm_malloc_fast(size_t n) {
  void *p = vm_heap_direct_pop(vm_heap_tls, n);
  return vm_likely(p != NULL) ? p : vm_alloc_slow(n, 0);
}

/* The free fast path: a registered segment, a page owned by this thread's heap with no
 * flag set (one compare), p at a carved block's start (a multiply), a block not
 * marked freed, push. The rest is vm_free_slow, which also says what was wrong. */
VM_INLINE void vm_free_fast(void *p) {
  vm_segment_t *segment = vm_segment_of(p);
  if (vm_unlikely(!vm_registry_contains(p))) {
    vm_free_slow(NULL, p, VM_FREE_OTHER);
    return;
  }
  vm_page_t *page = vm_page_of(segment, p);
  vm_heap_t *heap = vm_heap_tls;
  if (vm_likely(atomic_load_explicit(&page->owner, memory_order_relaxed) == (uintptr_t)heap)) {
    vm_block_t *block = p;
    if (vm_unlikely(!vm_page_is_block_start(page, p))) {
      vm_free_slow(page, p, VM_FREE_OTHER);
      return;
    }
    if (vm_unlikely(block->freed == heap->freed_key)) {
      vm_free_slow(page, p, VM_FREE_MAYBE_TWICE);
      return;
    }
    vm_block_set_next(block, page->free, heap->list_secret);
    block->freed = heap->freed_key;
    page->free = block;
    if (vm_unlikely(--page->used == 0))
      vm_free_slow(page, p, VM_FREE_RETIRE);
    return;
  }
  vm_free_slow(page, p, VM_FREE_OTHER);
}

/* ---- init.c ------------------------------------------------------------------------ */
void vm_init_process(void); /* idempotent; cheap after the first call */
void vm_init_late(void);    /* once a heap exists: atfork, exit report */
bool vm_init_done(void);

/* ---- options.c --------------------------------------------------------------------- */
#define VM_OPTION(name, type, def, min, max, help) VM_OPTION_##name,
#define VM_OPTION_TEXT(name, type, def, help) VM_OPTION_##name,
typedef enum {
#include "options.def"
  VM_OPTION_COUNT
} vm_option_id_t;
#undef VM_OPTION
#undef VM_OPTION_TEXT
/* Reads the options from `environment` unless `secure` (a set-id process: AT_SECURE). */
void vm_options_init(char *const *environment, bool secure);
long vm_option(vm_option_id_t id);
const char *vm_option_text(vm_option_id_t id); /* a VM_OPTION_TEXT option; never NULL */
void vm_option_set(vm_option_id_t id, long value);
void vm_options_print(int fd);
int vm_mallopt(int param, int value);
#define VM_ON_ERROR_WARN 1 /* VMALLOC_ON_ERROR=warn */
#define VM_STATS_JSON 2    /* VMALLOC_STATS=json (1 is text) */
/* Blocks larger than this get their own mapping (VMALLOC_MMAP_THRESHOLD, mallopt). */
VM_INLINE size_t vm_huge_threshold(void) { return (size_t)vm_option(VM_OPTION_MMAP_THRESHOLD); }

/* ---- counters.c (VMALLOC_STATS) --------------------------------------------------- */
/* Counting buckets: a size class, or all large blocks, or all huge ones. */
#define VM_COUNTER_LARGE (VM_CLASS_COUNT + 1)
#define VM_COUNTER_HUGE (VM_CLASS_COUNT + 2)
#define VM_COUNTER_BUCKETS (VM_CLASS_COUNT + 3)
typedef struct {
  size_t allocs, frees, live, peak; /* blocks */
} vm_bucket_counts_t;
typedef struct {
  bool enabled; /* counting is on (VMALLOC_STATS): else only threads_seen is kept */
  vm_bucket_counts_t buckets[VM_COUNTER_BUCKETS];
  size_t requested_bytes, allocated_bytes; /* summed over every allocation made */
  size_t live_bytes, peak_bytes;           /* allocated bytes in live blocks, and their peak */
  size_t cross_thread_frees;
  size_t threads_seen; /* threads that made a heap */
} vm_counters_t;
void vm_count_malloc(const void *p, size_t requested);
void vm_count_free(const void *p);
void vm_count_resize(size_t old_size, const void *q, size_t requested);
void vm_count_cross_thread_free(void);
void vm_count_thread(void);
void vm_counters_get(vm_counters_t *out);

/* ---- stats.c ----------------------------------------------------------------------- */
struct vmalloc_memory;
struct vmalloc_stats;
void vm_stats_take(struct vmalloc_stats *out, vm_census_t *census);
int vm_stats_get(struct vmalloc_stats *out);
int vm_memory_get(struct vmalloc_memory *out);
struct mallinfo2 vm_mallinfo2(void);
struct mallinfo vm_mallinfo(void);
void vm_malloc_stats(void);
struct _IO_FILE;
int vm_malloc_info(int options, struct _IO_FILE *fp);

/* ---- report.c ---------------------------------------------------------------------- */
void vm_stats_at_exit(void);
int vm_stats_print(int fd);

/* ---- check.c (VMALLOC_CHECK >= 2) ------------------------------------------------- */
#define VM_CHECK_OVERHEAD 16 /* a canary after the block and its size in the last word */
#define VM_EXTEND_BYTES 4096 /* a fresh page hands out blocks this much at a time */
#define EXTEND_MAX_BLOCKS (VM_EXTEND_BYTES / VM_ALIGN)
VM_INLINE int vm_check_level(void) { return (int)vm_option(VM_OPTION_CHECK); }
/* Counting takes every call off the fast paths, as checking tiers 2 and 3 do
 * (counters.c). */
VM_INLINE bool vm_counting(void) { return vm_option(VM_OPTION_STATS) != 0; }
VM_INLINE bool vm_fast_paths_off(void) { return vm_check_level() >= 2 || vm_counting(); }
size_t vm_check_free_span(size_t block_size);
void vm_check_junk_fresh(uint8_t *first, size_t count, size_t block_size);
void *vm_check_on_malloc(void *p, size_t n, size_t block_size, bool class_block);
size_t vm_check_requested(void *p, size_t block_size);
bool vm_check_on_free(void *p, size_t block_size, bool class_block, const char *where);
vm_block_t *vm_check_quarantine(void *p, size_t bytes);
void vm_check_lock_all(void);
void vm_check_unlock_all(void);
vm_block_t *vm_check_shuffled_list(uint8_t *first, size_t count, size_t block_size,
                                   vm_block_t *tail_next, uintptr_t secret);

/* ---- diag.c ------------------------------------------------------------------------ */
void vm_diag_assert_failed(const char *expr, const char *file, int line) __attribute__((noreturn));
void vm_diag_misuse(const char *fmt, ...);
void vm_diag_warn(const char *fmt, ...);
/* Allocation-free formatting into buf: %s %d %u %zu %zd %p %x %lu %ld %%. */
int vm_diag_format(char *buf, size_t size, const char *fmt, ...);
int vm_diag_vformat(char *buf, size_t size, const char *fmt, __builtin_va_list ap);
void vm_diag_write(int fd, const char *s, size_t len);

#endif
