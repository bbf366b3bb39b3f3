/* The public allocation calls under their vm_ names (override.c gives them the libc
 * names): the malloc and free fast paths, calloc, realloc, the aligned family and
 * malloc_usable_size. */
#include "internal.h"

#include <errno.h>
#include <string.h>

/* ---- allocation on a given heap ---------------------------------------------------- */

/* n bytes from heap, any size; NULL when memory is exhausted (errno left to the caller). */
static void *heap_malloc(vm_heap_t *heap, size_t n) {
  if (n <= VM_MEDIUM_MAX) {
    vm_page_t *page = heap->queues[vm_class_of(n)].first;
    if (page != NULL && page->free != NULL)
      return vm_page_pop(page, page->free, heap->list_secret);
    return vm_page_malloc_slow(heap, n);
  }
  if (n <= vm_huge_threshold())
    return vm_large_malloc(heap, n, 0);
  if (n > VM_MAX_REQUEST)
    return NULL;
  return vm_huge_malloc(n, 0);
}

/* n bytes aligned to `alignment` (a power of two). Up to 64 KiB of alignment costs nothing
 * extra: page areas start at 64 KiB boundaries, and a class whose size is a multiple of
 * the alignment has every block aligned (see sizeclass.c). */
static void *heap_malloc_aligned(vm_heap_t *heap, size_t n, size_t alignment) {
  if (alignment <= VM_ALIGN)
    return heap_malloc(heap, n);
  if (n > VM_MAX_REQUEST)
    return NULL;
  if (alignment <= VM_SLICE_SIZE && vm_align_up(n, alignment) <= VM_MEDIUM_MAX) {
    void *p = heap_malloc(heap, vm_class_size[vm_class_of_aligned(n, alignment)]);
    vm_assert(1, p == NULL || ((uintptr_t)p & (alignment - 1)) == 0);
    return p;
  }
  if (n <= vm_huge_threshold() && alignment <= VM_LARGE_MAX)
    return vm_large_malloc(heap, n, alignment);
  return vm_huge_malloc(n, alignment);
}

/* The block p lies in: its raw size and whether it is a class block (reused whole). */
static size_t raw_block_size(void *p, bool *class_block) {
  vm_segment_t *segment = vm_segment_of_block(p);
  *class_block = false;
  if (segment->kind == VM_SEGMENT_HUGE)
    return vm_segment_huge_usable(segment);
  vm_page_t *page = vm_page_of(segment, p);
  *class_block = page->class_idx != 0;
  return page->block_size;
}

/* The heap's allocation, through the checks of VMALLOC_CHECK >= 2 and the counters of
 * VMALLOC_STATS when they are on. */
void *vm_heap_malloc_aligned(vm_heap_t *heap, size_t n, size_t alignment) {
  if (vm_likely(!vm_fast_paths_off()))
    return heap_malloc_aligned(heap, n, alignment);
  void *p;
  if (vm_check_level() >= 2) {
    if (n > VM_MAX_REQUEST)
      return NULL;
    p = heap_malloc_aligned(heap, n + VM_CHECK_OVERHEAD, alignment);
    if (p == NULL)
      return NULL;
    bool class_block;
    size_t size = raw_block_size(p, &class_block);
    p = vm_check_on_malloc(p, n, size, class_block);
  } else {
    p = heap_malloc_aligned(heap, n, alignment);
  }
  if (p != NULL && vm_counting())
    vm_count_malloc(p, n);
  return p;
}

/* The calling thread's heap (made on first use), or the backup heap under its lock. */
VM_NOINLINE void *vm_alloc_slow(size_t n, size_t alignment) {
  vm_heap_t *heap = vm_heap_for_thread();
  void *p;
  if (vm_likely(heap != NULL)) {
    p = vm_heap_malloc_aligned(heap, n, alignment);
  } else {
    vm_heap_lock_backup(&heap);
    p = vm_heap_malloc_aligned(heap, n, alignment);
    vm_heap_unlock_backup();
  }
  if (vm_unlikely(p == NULL))
    errno = ENOMEM;
  return p;
}

/* ---- malloc and free (their fast paths are inline, in internal.h) ------------------ */

void *vm_malloc(size_t n) { return vm_malloc_fast(n); }

/* free() of a pointer whose segment is not registered: NULL, a block aligned to a segment
 * or more (freed as any huge block is, through its header's descriptor), or a pointer that
 * is not ours. */
static VM_NOINLINE void free_unregistered(void *p) {
  if (p == NULL)
    return;
  vm_segment_t *segment = vm_segment_of_block(p);
  if (segment == NULL) {
    vm_diag_misuse("invalid pointer %p (not allocated by vmalloc) in free()", p);
    return; /* warn: someone else's memory, left alone */
  }
  vm_page_free_generic(vm_page_of(segment, segment), p);
}

/* Everything else free does. (errno stays as it was: see os.c.) */
VM_NOINLINE void vm_free_slow(vm_page_t *page, void *p, vm_free_reason_t reason) {
  if (reason == VM_FREE_RETIRE)
    vm_page_retire(vm_heap_tls, page);
  else if (page != NULL) /* the fast path found it in a registered segment */
    vm_page_free_generic(page, p);
  else
    free_unregistered(p);
}

void vm_free(void *p) { vm_free_fast(p); }

/* ---- the rest of the family -------------------------------------------------------- */

/* The block that p points to: its segment and page, or a misuse report naming `where`.
 * Returns the usable size, 0 for NULL, SIZE_MAX after a misuse report. */
static size_t usable_size_checked(const void *p, const char *where, vm_segment_t **segment_out) {
  if (p == NULL)
    return 0;
  vm_segment_t *segment = vm_segment_of_block(p);
  if (segment == NULL) {
    vm_diag_misuse("invalid pointer %p (not allocated by vmalloc) in %s", p, where);
    return SIZE_MAX;
  }
  if (segment == vm_segment_of(p)) { /* else a segment-aligned huge block, p its start */
    vm_page_t *page = vm_page_of(segment, p);
    if (!page->in_use) {
      vm_diag_misuse("invalid pointer %p (not an allocated block) in %s", p, where);
      return SIZE_MAX;
    }
    uintptr_t owner = atomic_load_explicit(&page->owner, memory_order_relaxed);
    if (!(owner & VM_PAGE_HUGE) && !vm_page_live_block_or_report(page, p, where, false))
      return SIZE_MAX;
  }
  if (segment_out != NULL)
    *segment_out = segment;
  bool class_block;
  size_t size = raw_block_size((void *)p, &class_block);
  if (vm_check_level() >= 2) { /* a checked block: what was asked for, if intact */
    size = vm_check_requested((void *)p, size);
    if (size == SIZE_MAX) {
      vm_diag_misuse("heap overflow past the end of %p detected in %s", p, where);
      return SIZE_MAX;
    }
  }
  return size;
}

/* The page of p when p is a live block of a class page without canaries (VMALLOC_CHECK
 * below 2), by the checks free's fast path makes: such a block's size is its page's,
 * so realloc and malloc_usable_size need none of the general path's second lookups and
 * check-level branches. NULL for anything else, which the general path looks at and
 * reports. */
VM_INLINE vm_page_t *page_of_plain_live_block(const void *p) {
  if (!vm_registry_contains(p))
    return NULL;
  vm_page_t *page = vm_page_of(vm_segment_of(p), p);
  uintptr_t owner = atomic_load_explicit(&page->owner, memory_order_relaxed);
  if (page->class_idx == 0 || !page->in_use || (owner & VM_PAGE_CHECKED) ||
      !vm_page_is_block_start(page, p) || vm_page_block_is_freed(p))
    return NULL;
  return page;
}

size_t vm_usable_size(const void *p) {
  vm_page_t *page = page_of_plain_live_block(p);
  if (vm_likely(page != NULL))
    return page->block_size;
  size_t size = usable_size_checked(p, "malloc_usable_size()", NULL);
  return size == SIZE_MAX ? 0 : size;
}

/* Clears a block just handed out for n bytes, unless it is known to read as zero: a
 * fresh huge mapping, or a large block carved from slices never touched or purged with
 * MADV_DONTNEED. Class blocks are reused, so they are always cleared. A reused huge
 * mapping may be large and mostly untouched: only its resident pages are written (see
 * vm_huge_clear). */
static void clear_new_block(void *p, size_t n) {
  if (n <= VM_MEDIUM_MAX) {
    memset(p, 0, n);
    return;
  }
  vm_segment_t *segment = vm_segment_of_block(p);
  if (segment->kind == VM_SEGMENT_HUGE) {
    if (!segment->huge_fresh)
      vm_huge_clear(segment, p, n);
  } else if (!vm_page_of(segment, p)->zeroed) {
    memset(p, 0, n);
  }
}

void *vm_calloc(size_t count, size_t size) {
  size_t total;
  if (__builtin_mul_overflow(count, size, &total)) {
    errno = ENOMEM;
    return NULL;
  }
  void *p = vm_malloc(total);
  if (p != NULL)
    clear_new_block(p, total);
  return p;
}

/* A new block of n bytes with the first of p's `usable` bytes, then p freed. */
static void *realloc_by_moving(void *p, size_t usable, size_t n) {
  void *q = vm_malloc(n);
  if (q == NULL)
    return NULL;
  memcpy(q, p, n < usable ? n : usable);
  vm_free(p);
  return q;
}

/* A block stays where it is when the new size fits and does not waste more than half of
 * it. Class blocks cannot grow in place: their neighbours are blocks of the same size. */
static bool fits_in_place(size_t n, size_t usable) { return n <= usable && n >= usable / 2; }

void *vm_realloc(void *p, size_t n) {
  if (p == NULL)
    return vm_malloc(n);
  if (n == 0) { /* glibc: realloc(p, 0) frees p and returns NULL */
    vm_free(p);
    return NULL;
  }
  if (n > VM_MAX_REQUEST) {
    errno = ENOMEM;
    return NULL;
  }
  vm_page_t *page = page_of_plain_live_block(p);
  if (vm_likely(page != NULL)) {
    size_t usable = page->block_size;
    return fits_in_place(n, usable) ? p : realloc_by_moving(p, usable, n);
  }
  vm_segment_t *segment = NULL;
  size_t usable = usable_size_checked(p, "realloc()", &segment);
  if (usable == SIZE_MAX) {
    errno = EINVAL; /* misuse reported (and warn chosen): the pointer is not ours to use */
    return NULL;
  }
  if (vm_check_level() >= 2) {
    /* a checked block stays if the new size fits: canary checked, then moved */
    bool class_block;
    size_t raw = raw_block_size(p, &class_block);
    if (n <= raw - VM_CHECK_OVERHEAD && n >= usable / 2) {
      if (!vm_check_on_free(p, raw, false, "realloc()"))
        return NULL;
      return vm_check_on_malloc(p, n, raw, false);
    }
  } else if (segment->kind == VM_SEGMENT_HUGE && n > vm_huge_threshold()) {
    /* it stays when it fits and grows, into the slack realloc gave it or the rest of the
     * reused mapping it came in (see huge_cache_take): those pages may be resident, and
     * cutting them off would have the next growth fault fresh ones in. A shrinking block
     * gives back what it no longer needs. */
    if (n <= usable && (n >= segment->huge_requested || usable - n <= usable / 8)) {
      segment->huge_requested = n;
      return p;
    }
    void *moved = vm_huge_realloc(segment, n);
    if (moved != NULL) {
      if (vm_counting())
        vm_count_resize(usable, moved, n);
      return moved;
    }
  } else if (fits_in_place(n, usable)) {
    return p;
  } else if (n > usable && segment->kind == VM_SEGMENT_NORMAL && usable > VM_MEDIUM_MAX &&
             vm_large_grow_in_place(segment, p, n)) {
    if (vm_counting())
      vm_count_resize(usable, p, n);
    return p;
  }
  return realloc_by_moving(p, usable, n);
}

void *vm_reallocarray(void *p, size_t count, size_t size) {
  size_t total;
  if (__builtin_mul_overflow(count, size, &total)) {
    errno = ENOMEM;
    return NULL;
  }
  return vm_realloc(p, total);
}

/* An aligned block that fits the direct table comes from it as malloc's blocks do: its
 * class, the first whose size is a multiple of the alignment, has every block aligned. */
static void *aligned(size_t alignment, size_t n) {
  vm_heap_t *heap = vm_heap_tls;
  if (n <= VM_DIRECT_MAX && alignment <= VM_DIRECT_MAX) {
    size_t size = vm_class_size[vm_class_of_aligned(n, alignment)];
    void *p = vm_heap_direct_pop(heap, size);
    if (p != NULL)
      return p;
  }
  if (vm_likely(heap != &vm_heap_empty)) {
    void *p = vm_heap_malloc_aligned(heap, n, alignment);
    if (vm_unlikely(p == NULL))
      errno = ENOMEM;
    return p;
  }
  return vm_alloc_slow(n, alignment);
}

int vm_posix_memalign(void **out, size_t alignment, size_t n) {
  if (alignment < sizeof(void *) || !vm_is_pow2(alignment))
    return EINVAL;
  int saved = errno;
  void *p = aligned(alignment, n);
  errno = saved;
  if (p == NULL)
    return ENOMEM;
  *out = p;
  return 0;
}

/* C17 and glibc 2.38: the alignment must be a power of two. */
void *vm_aligned_alloc(size_t alignment, size_t n) {
  if (!vm_is_pow2(alignment)) {
    errno = EINVAL;
    return NULL;
  }
  return aligned(alignment, n);
}

/* glibc rounds an alignment that is not a power of two up to one. */
void *vm_memalign(size_t alignment, size_t n) {
  if (alignment > ((size_t)1 << 62)) {
    errno = EINVAL;
    return NULL;
  }
  if (!vm_is_pow2(alignment))
    alignment = alignment <= 1 ? 1 : (size_t)1 << (64 - __builtin_clzl(alignment - 1));
  return aligned(alignment, n);
}

void *vm_valloc(size_t n) { return aligned(vm_os_page_size(), n); }

/* glibc: pvalloc(n) rounds n up to whole pages, and pvalloc(0) gives one page. */
void *vm_pvalloc(size_t n) {
  size_t page = vm_os_page_size();
  if (n > VM_MAX_REQUEST) {
    errno = ENOMEM;
    return NULL;
  }
  return aligned(page, n == 0 ? page : vm_align_up(n, page));
}

void vm_free_sized(void *p, size_t n) {
  (void)n;
  vm_free(p);
}

void vm_free_aligned_sized(void *p, size_t alignment, size_t n) {
  (void)alignment;
  (void)n;
  vm_free(p);
}
