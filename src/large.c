/* Blocks too big for a size class. Large blocks (up to VM_LARGE_MAX) take a run of
 * slices inside a segment, so freeing and reallocating them costs no system call and no
 * page fault. Huge blocks get a dedicated mapping that realloc resizes with mremap
 * instead of copying. */
#include "internal.h"

#include <string.h>

/* A run of slices holding one block of n bytes, aligned to `alignment` (<= 2 MiB). At
 * VMALLOC_CHECK=3 the run's last OS page is a guard (see vm_large_guard_bytes). */
void *vm_large_malloc(vm_heap_t *heap, size_t n, size_t alignment) {
  vm_segment_purge_tick(heap);
  if (atomic_load_explicit(&heap->notified, memory_order_relaxed))
    vm_segment_collect_notified(heap);
  size_t guard = vm_check_level() >= 3 ? vm_os_page_size() : 0;
  size_t slices = (n + guard + VM_SLICE_SIZE - 1) / VM_SLICE_SIZE;
  if (slices == 0)
    slices = 1;
  size_t align_slices = alignment > VM_SLICE_SIZE ? alignment / VM_SLICE_SIZE : 1;
  vm_page_t *page = vm_segment_page_alloc(heap, slices, align_slices);
  if (page == NULL)
    return NULL;
  uint8_t *area = vm_page_area(vm_segment_of(page), page);
  size_t run = slices * VM_SLICE_SIZE;
  if (guard != 0 && !vm_os_guard(area + run - guard, guard))
    guard = 0; /* no guard, but a usable block all the same */
  page->class_idx = 0;
  page->area_low = (uint32_t)(uintptr_t)area;
  vm_page_set_block_size(page, run - guard);
  page->pinned = 0;
  page->reserved = page->used = 1;
  vm_page_set_capacity(page, 1);
  page->free = NULL;
  page->next = page->prev = NULL;
  /* its one block is out: FULL, with the notify duty armed for a remote free */
  atomic_store_explicit(vm_page_thread_free(page), VM_THREAD_FREE_NOTIFY, memory_order_relaxed);
  atomic_store_explicit(&page->owner, vm_page_owner_word(heap) | VM_PAGE_FULL,
                        memory_order_relaxed);
  vm_block_t *block = (vm_block_t *)area;
  block->freed = 0; /* the memory may hold an old block's freed key */
  return block;
}

/* The guard page that ends a large page's run, if it has one: 0 or the OS page size. */
size_t vm_large_guard_bytes(const vm_page_t *page) {
  if (page->class_idx != 0)
    return 0;
  return (size_t)page->slice_count * VM_SLICE_SIZE - page->block_size;
}

/* realloc of the large block p (in segment) to n bytes, in place: the calling thread's
 * block grows into the free slices after its run. False when it cannot. */
bool vm_large_grow_in_place(vm_segment_t *segment, void *p, size_t n) {
  vm_heap_t *heap = vm_heap_tls;
  vm_page_t *page = vm_page_of(segment, p);
  uintptr_t owner = atomic_load_explicit(&page->owner, memory_order_relaxed);
  if (page->class_idx != 0 || (owner & ~(uintptr_t)VM_PAGE_FLAGS) != (uintptr_t)heap ||
      vm_large_guard_bytes(page) != 0 || n > vm_huge_threshold())
    return false;
  size_t slices = (n + VM_SLICE_SIZE - 1) / VM_SLICE_SIZE;
  if (!vm_segment_page_grow(heap, page, slices))
    return false;
  vm_page_set_block_size(page, slices * VM_SLICE_SIZE);
  return true;
}

/* A dedicated mapping for one block; fresh mappings read as zero. */
void *vm_huge_malloc(size_t n, size_t alignment) {
  if (n == 0)
    n = 1; /* a unique block even for malloc(0) at a huge alignment */
  size_t offset;
  vm_segment_t *segment = vm_segment_huge_alloc(n, alignment, &offset);
  if (segment == NULL)
    return NULL;
  uint8_t *block = (uint8_t *)segment + offset;
  vm_page_t *page = vm_page_of(segment, block < (uint8_t *)segment + VM_SEGMENT_SIZE
                                            ? block
                                            : (uint8_t *)segment);
  segment->huge_requested = n;
  page->class_idx = 0;
  page->in_use = 1;
  page->slice_count = 1;
  page->block_size = 0; /* the segment knows the size */
  page->pinned = 0;
  page->reserved = page->capacity = page->used = 1;
  atomic_store_explicit(&page->owner, vm_page_owner_word(NULL) | VM_PAGE_HUGE,
                        memory_order_relaxed);
  return block;
}

/* The segment of the block that p points into: the registered segment p lies in, or the
 * header of a huge block aligned to a segment or more, which sits exactly one segment
 * below it (see vm_segment_huge_alloc); NULL when p is not vmalloc's. */
vm_segment_t *vm_segment_of_block(const void *p) {
  vm_segment_t *segment = vm_segment_of(p);
  if (vm_registry_contains(segment))
    return segment;
  if (((uintptr_t)p & VM_SEGMENT_MASK) != 0 || (uintptr_t)p < VM_SEGMENT_SIZE)
    return NULL;
  segment = (vm_segment_t *)((uintptr_t)p - VM_SEGMENT_SIZE);
  if (!vm_registry_contains(segment) || segment->kind != VM_SEGMENT_HUGE ||
      segment->huge_block_offset != VM_SEGMENT_SIZE)
    return NULL;
  return segment;
}

/* Resizes the huge block of `segment` to n bytes, returning where it is now: in place when
 * the neighbours allow, else by moving its pages with mremap. NULL (block untouched) when
 * neither works, or when a copy costs less; the caller then copies. */
void *vm_huge_realloc(vm_segment_t *segment, size_t n) {
  size_t offset = segment->huge_block_offset;
  if (offset >= VM_SEGMENT_SIZE)
    return NULL;
  size_t page = vm_os_page_size();
  size_t old_size = segment->size;
  size_t exact = vm_align_up(offset + n, page);
  /* growing: by an eighth of the block at least, so a block grown a little at a time (a
   * string appended to) costs a system call per eighth of its size, not per page; pages
   * it does not touch cost no memory */
  size_t slack = (old_size - offset) / 8;
  size_t new_size = exact;
  if (exact > old_size && exact < old_size + slack)
    new_size = vm_align_up(old_size + slack, page);
  /* growing out of its mapping into a freed one that is mostly resident: the copy costs
   * less than the page faults of the fresh pages growing in place would, and the block
   * gets the room beyond it too (see huge_cache_take) */
  if (new_size > old_size && vm_segment_huge_cache_resident(exact))
    return NULL;
  /* in place: the header stays where it is, and so does the registry bit. When the slack
   * does not fit there, the block moves (its pages, not its bytes) to where it does:
   * growing by just the page that fits would mean a system call per page again */
  if (!vm_segment_huge_resize(segment, new_size)) {
    vm_segment_huge_detach(segment);
    vm_segment_t *moved = vm_os_remap_aligned(segment, old_size, new_size, VM_SEGMENT_SIZE);
    if (moved != NULL) {
      segment = moved;
      vm_segment_huge_set_size(segment, new_size);
    }
    vm_segment_huge_attach(segment);
    if (moved == NULL)
      return NULL;
  }
  segment->huge_requested = n;
  return (uint8_t *)segment + offset;
}

/* Clears n bytes at p, the block of a reused huge mapping, for calloc. Asking pagemap
 * which pages hold memory costs about as much per page as writing the page (the kernel
 * walks the page table), so what it said is kept: pages that were the process's own stay
 * so while mapped (the one place that drops pages of a mapping it keeps says so, with
 * vm_huge_dropped_from), and are written without asking again. A program that callocs a
 * big buffer, fills it and frees it, over and over, pays for one walk, not one per
 * calloc. */
void vm_huge_dropped_from(vm_segment_t *segment, size_t offset) {
  if (segment->huge_own_to > offset)
    segment->huge_own_to = offset;
  if (segment->huge_own_from >= segment->huge_own_to)
    segment->huge_own_from = segment->huge_own_to = 0;
}

void vm_huge_clear(vm_segment_t *segment, void *p, size_t n) {
  size_t from = (size_t)((uint8_t *)p - (uint8_t *)segment), to = from + n;
  size_t known_to = from;
  if (segment->huge_own_from <= from && from < segment->huge_own_to)
    known_to = segment->huge_own_to < to ? segment->huge_own_to : to;
  memset(p, 0, known_to - from);
  if (known_to == to)
    return;
  size_t asked = to - known_to;
  size_t own = vm_os_zero((uint8_t *)segment + known_to, asked);
  if (own == (asked & ~(vm_os_page_size() - 1))) { /* every whole page asked about */
    if (known_to == from) /* nothing was known: the range starts here */
      segment->huge_own_from = from;
    segment->huge_own_to = known_to + own;
  }
}
