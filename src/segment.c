/* Segments: size-aligned reservations carved into runs of 64 KiB slices (pages). A heap
 * owns its segments; a heap whose thread exits abandons them and another heap adopts them
 * when it next needs space. Empty segments are cached a little, then unmapped.
 * One lock (`segments_lock`) guards the process-wide lists: every normal segment (for the
 * census), the abandoned ones and the cache. The pages themselves need no lock. */
#include "internal.h"

#include <stdlib.h>
#include <string.h>

/* Which list holds a segment (vm_segment_t.list). */
enum { ON_NO_LIST, ON_HEAP_AVAIL, ON_HEAP_FULL, ON_ABANDONED, ON_ABANDONED_FULL, ON_CACHE };

static vm_lock_t segments_lock;
static vm_segment_t *all_segments;
/* Abandoned segments with room for an adopter (a free slice or a free block), and those
 * whose every block is in use: adopting one of these gives a heap nothing but other
 * threads' frees to collect, so it waits until a block comes back (see
 * vm_segment_abandoned_gains_room). */
static vm_segment_t *abandoned;
static vm_segment_t *abandoned_full;
static vm_segment_t *cache;
static size_t cache_count;
static size_t abandoned_count;
static vm_segment_t *huge_list; /* every huge block's mapping */
static size_t huge_count, huge_bytes;
static size_t huge_recent_peak; /* the most huge bytes in use since the cache last expired */
static vm_segment_t *huge_cache; /* freed huge mappings kept for reuse, newest first */
static size_t huge_cache_bytes;          /* mapped */
static size_t huge_cache_resident_bytes; /* of those, resident (see huge_measure) */
static void huge_cache_expire(int64_t before, bool force); /* with the huge blocks, below */
static _Atomic(size_t) segment_bytes_mapped;
static void lazy_forget(uint64_t slices); /* with the purge policy, below */

/* ---- intrusive lists ------------------------------------------------------------- */

/* `list` is written by a segment's heap without segments_lock, and read under it by
 * threads that look for abandoned or cached segments: relaxed atomics, plain moves. */
static void set_list(vm_segment_t *segment, uint8_t which) {
  __atomic_store_n(&segment->list, which, __ATOMIC_RELAXED);
}
static uint8_t list_of(const vm_segment_t *segment) {
  return __atomic_load_n(&segment->list, __ATOMIC_RELAXED);
}

static void list_push(vm_segment_t **head, vm_segment_t *segment, uint8_t which) {
  segment->prev = NULL;
  segment->next = *head;
  if (*head != NULL)
    (*head)->prev = segment;
  *head = segment;
  set_list(segment, which);
}

static void list_remove(vm_segment_t **head, vm_segment_t *segment) {
  if (segment->prev != NULL)
    segment->prev->next = segment->next;
  else
    *head = segment->next;
  if (segment->next != NULL)
    segment->next->prev = segment->prev;
  segment->next = segment->prev = NULL;
  set_list(segment, ON_NO_LIST);
}

static vm_segment_t **heap_list(vm_heap_t *heap, vm_segment_t *segment) {
  return list_of(segment) == ON_HEAP_AVAIL ? &heap->segments_avail : &heap->segments_full;
}

/* Keeps a segment on the heap list that matches whether it has a free slice. */
static void heap_list_update(vm_heap_t *heap, vm_segment_t *segment) {
  uint8_t want = segment->free_slices != 0 ? ON_HEAP_AVAIL : ON_HEAP_FULL;
  if (list_of(segment) == want)
    return;
  if (list_of(segment) != ON_NO_LIST)
    list_remove(heap_list(heap, segment), segment);
  list_push(want == ON_HEAP_AVAIL ? &heap->segments_avail : &heap->segments_full, segment,
            want);
}

static uint64_t all_usable_slices(void) {
  return ~(uint64_t)0 << VM_FIRST_SLICE;
}

/* Whether an adopter would find room in an abandoned segment: a free slice, or a page
 * with a free block. */
static bool offers_room(const vm_segment_t *segment) {
  if (segment->free_slices != 0)
    return true;
  for (int i = VM_FIRST_SLICE; i < VM_SLICES; i++) {
    const vm_page_t *page = &segment->pages[i];
    if (page->in_use && page->head_offset == 0 && vm_page_offers_room(page))
      return true;
  }
  return false;
}

/* The abandoned lists and their count: onto one under the lock, off it with the lock
 * held. */
static void abandon(vm_segment_t *segment) {
  bool has_room = offers_room(segment);
  vm_lock(&segments_lock);
  if (has_room)
    list_push(&abandoned, segment, ON_ABANDONED);
  else
    list_push(&abandoned_full, segment, ON_ABANDONED_FULL);
  abandoned_count++;
  vm_unlock(&segments_lock);
}
static void unabandon(vm_segment_t *segment) {
  list_remove(list_of(segment) == ON_ABANDONED ? &abandoned : &abandoned_full, segment);
  abandoned_count--;
}
static bool is_abandoned(const vm_segment_t *segment) {
  uint8_t which = list_of(segment);
  return which == ON_ABANDONED || which == ON_ABANDONED_FULL;
}

/* ---- making and unmaking segments -------------------------------------------------- */

/* Resets a segment's header for a new owner: every usable slice free. The purge state
 * (dirty, lazy, zero, committed) of a cached segment carries over. */
static void segment_reset(vm_segment_t *segment, vm_heap_t *heap) {
  segment->kind = VM_SEGMENT_NORMAL;
  segment->live_pages = 0;
  segment->free_slices = all_usable_slices();
  atomic_store_explicit(&segment->notify_pages, 0, memory_order_relaxed);
  atomic_store_explicit(&segment->owner_heap, heap, memory_order_release);
  set_list(segment, ON_NO_LIST);
}

static void all_list_remove(vm_segment_t *segment) {
  if (segment->all_prev != NULL)
    segment->all_prev->all_next = segment->all_next;
  else
    all_segments = segment->all_next;
  if (segment->all_next != NULL)
    segment->all_next->all_prev = segment->all_prev;
}

/* A fresh segment: only its header slice is committed; everything else reads as zero. */
static vm_segment_t *segment_map(void) {
  vm_segment_t *segment = vm_os_reserve_aligned(VM_SEGMENT_SIZE, VM_SEGMENT_SIZE, true);
  if (segment == NULL)
    return NULL;
  if (!vm_os_commit(segment, VM_SLICE_SIZE)) {
    vm_os_release(segment, VM_SEGMENT_SIZE);
    return NULL;
  }
  vm_os_advise_huge(segment, VM_SEGMENT_SIZE);
  segment->size = VM_SEGMENT_SIZE;
  atomic_fetch_add_explicit(&segment_bytes_mapped, VM_SEGMENT_SIZE, memory_order_relaxed);
  segment->zero_slices = all_usable_slices();
  segment->committed_slices = 1; /* the header */
  vm_lock(&segments_lock);
  segment->all_prev = NULL;
  segment->all_next = all_segments;
  if (all_segments != NULL)
    all_segments->all_prev = segment;
  all_segments = segment;
  vm_unlock(&segments_lock);
  vm_registry_add(segment);
  return segment;
}

/* A cached or fresh segment for heap, or NULL when the kernel has no memory for one.
 * When mapping fails, the empty segments kept in the cache are unmapped and it is tried
 * once more: under an address-space limit the cache must not cost an allocation. */
static vm_segment_t *segment_obtain(vm_heap_t *heap) {
  vm_lock(&segments_lock);
  vm_segment_t *segment = cache;
  if (segment != NULL) {
    list_remove(&cache, segment);
    cache_count--;
  }
  vm_unlock(&segments_lock);
  if (segment == NULL && (segment = segment_map()) == NULL &&
      (!vm_segment_release_cache() || (segment = segment_map()) == NULL))
    return NULL;
  segment_reset(segment, heap);
  return segment;
}

/* An empty segment leaves its heap for the cache: kept mapped for reuse, its memory
 * purged on the usual schedule (so it costs address space, not memory). Cached segments
 * beyond VMALLOC_SEGMENT_CACHE are unmapped once they have been empty for the escalation
 * delay too (see purge_all): a program that frees and reallocates a big working set
 * within that time maps nothing and takes no page fault. */
static void segment_release(vm_segment_t *segment) {
  vm_assert(1, segment->live_pages == 0);
  atomic_store_explicit(&segment->owner_heap, NULL, memory_order_release);
  segment->cached_since_ms = vm_os_now_ms();
  vm_lock(&segments_lock);
  list_push(&cache, segment, ON_CACHE);
  cache_count++;
  vm_unlock(&segments_lock);
}

/* Unmaps a list of segments linked through `next`, already off every list. */
static void unmap_segments(vm_segment_t *list) {
  while (list != NULL) {
    vm_segment_t *next = list->next;
    vm_os_release_aligned(list, list->size);
    list = next;
  }
}

/* Takes a cached segment off the lists for unmapping (segments_lock held). */
static void uncache(vm_segment_t *segment, vm_segment_t **doomed) {
  list_remove(&cache, segment);
  cache_count--;
  lazy_forget(segment->lazy_slices);
  atomic_fetch_sub_explicit(&segment_bytes_mapped, segment->size, memory_order_relaxed);
  all_list_remove(segment);
  vm_registry_remove(segment);
  segment->next = *doomed;
  *doomed = segment;
}

/* Unmaps every cached segment and huge mapping; true if there was any. */
bool vm_segment_release_cache(void) {
  vm_segment_t *doomed = NULL;
  vm_lock(&segments_lock);
  bool any_huge = huge_cache != NULL;
  while (cache != NULL)
    uncache(cache, &doomed);
  vm_unlock(&segments_lock);
  unmap_segments(doomed);
  huge_cache_expire(0, true);
  return doomed != NULL || any_huge;
}

/* ---- slices and pages -------------------------------------------------------------- */

/* The first slice of a run of `count` free slices starting at a multiple of `align`
 * slices, or -1. */
static int first_fit(uint64_t free_slices, size_t count, size_t align) {
  uint64_t starts = free_slices;
  for (size_t k = 1; k < count && starts != 0; k++)
    starts &= free_slices >> k;
  if (align > 1) {
    uint64_t multiples = 0;
    for (size_t i = 0; i < (size_t)VM_SLICES; i += align)
      multiples |= (uint64_t)1 << i;
    starts &= multiples;
  }
  return starts != 0 ? __builtin_ctzll(starts) : -1;
}

static uint64_t run_bits(int first, size_t count) {
  return (count >= 64 ? ~(uint64_t)0 : (((uint64_t)1 << count) - 1)) << first;
}

/* The length of the run of set bits in mask that starts at bit `first`. */
static int run_length_at(uint64_t mask, int first) {
  uint64_t from_first = mask >> first;
  return ~from_first == 0 ? VM_SLICES - first : __builtin_ctzll(~from_first);
}

/* Like first_fit, but in the shortest run of free slices that has room (best fit), whose
 * length goes to *run_length: a page of one slice takes a hole of one slice rather than
 * the front of a long run that a big block will need next. */
static int best_fit(uint64_t free_slices, size_t count, size_t align, int *run_length) {
  int best = -1;
  *run_length = VM_SLICES + 1;
  for (uint64_t rest = free_slices; rest != 0;) {
    int first = __builtin_ctzll(rest);
    int length = run_length_at(rest, first);
    uint64_t run = run_bits(first, (size_t)length);
    rest &= ~run;
    if ((size_t)length < count || length >= *run_length)
      continue;
    int start = first_fit(run, count, align);
    if (start < 0)
      continue;
    best = start;
    *run_length = length;
    if ((size_t)length == count)
      break;
  }
  return best;
}

/* Calls fn(segment, first, count, arg) for each run of consecutive set bits in mask. */
static void for_each_run(vm_segment_t *segment, uint64_t mask,
                         void (*fn)(vm_segment_t *, int, int, void *), void *arg) {
  while (mask != 0) {
    int first = __builtin_ctzll(mask);
    int end = first + run_length_at(mask, first);
    fn(segment, first, end - first, arg);
    mask &= end >= 64 ? 0 : ~(uint64_t)0 << end;
  }
}

static size_t slice_bytes(uint64_t mask) {
  return (size_t)__builtin_popcountll(mask) * VM_SLICE_SIZE;
}

static uint8_t *slice_address(vm_segment_t *segment, int slice) {
  return (uint8_t *)segment + (size_t)slice * VM_SLICE_SIZE;
}

static void commit_run(vm_segment_t *segment, int first, int count, void *failed) {
  if (!vm_os_commit(slice_address(segment, first), (size_t)count * VM_SLICE_SIZE))
    *(bool *)failed = true;
  else
    segment->committed_slices |= run_bits(first, (size_t)count);
}

/* Takes the free slices of `bits` out of the free masks, committing them first under
 * strict overcommit; false (nothing taken) when they cannot be committed. *zeroed: they
 * all read as zero. */
static bool take_slices(vm_segment_t *segment, uint64_t bits, bool *zeroed) {
  vm_assert(1, (segment->free_slices & bits) == bits);
  vm_lock(&segment->lock);
  if (vm_os_strict_commit() && (segment->committed_slices & bits) != bits) {
    bool failed = false;
    for_each_run(segment, bits & ~segment->committed_slices, commit_run, &failed);
    if (failed) {
      vm_unlock(&segment->lock);
      return false;
    }
  }
  *zeroed = (segment->zero_slices & bits) == bits;
  uint64_t dropped = segment->dropped_slices & bits;
  int64_t dropped_ms = segment->dropped_ms;
  segment->dropped_slices &= ~bits;
  segment->free_slices &= ~bits;
  segment->dirty_slices &= ~bits;
  lazy_forget(segment->lazy_slices & bits);
  segment->lazy_slices &= ~bits;
  segment->zero_slices &= ~bits;
  vm_unlock(&segment->lock);
  if (dropped != 0) {
    int64_t now = vm_os_now_ms();
    vm_purge_note_reuse(slice_bytes(dropped), now - dropped_ms, now);
  }
  return true;
}

/* Points the descriptors of slices [from, to) of the page at `first` back to it. */
static void link_run(vm_segment_t *segment, int first, size_t from, size_t to) {
  for (size_t i = from; i < to; i++) {
    segment->pages[first + (int)i].head_offset = (uint16_t)(i * sizeof(vm_page_t));
    segment->pages[first + (int)i].in_use = 0;
  }
}

/* Makes a page of `count` slices at `first`; NULL if they cannot be committed. */
static vm_page_t *carve_page(vm_heap_t *heap, vm_segment_t *segment, int first, size_t count) {
  bool zeroed;
  if (!take_slices(segment, run_bits(first, count), &zeroed))
    return NULL;
  segment->live_pages++;
  vm_page_t *page = &segment->pages[first];
  link_run(segment, first, 0, count);
  page->in_use = 1;
  page->slice_count = (uint8_t)count;
  page->zeroed = zeroed;
  heap_list_update(heap, segment);
  return page;
}

/* Lengthens heap's page to `count` slices in place if the slices after it are free;
 * false (the page unchanged) if they are not, or cannot be committed. */
bool vm_segment_page_grow(vm_heap_t *heap, vm_page_t *page, size_t count) {
  vm_segment_t *segment = vm_segment_of(page);
  int first = (int)(page - segment->pages);
  size_t old = page->slice_count;
  if (count <= old || first + count > (size_t)VM_SLICES)
    return false;
  uint64_t bits = run_bits(first + (int)old, count - old);
  bool zeroed;
  if ((segment->free_slices & bits) != bits || !take_slices(segment, bits, &zeroed))
    return false;
  link_run(segment, first, old, count);
  page->slice_count = (uint8_t)count;
  heap_list_update(heap, segment);
  return true;
}

/* Takes the first abandoned segment on list `from` into heap; false when there is none.
 * Heaps that need room adopt from `abandoned`, those with room. */
static bool adopt_one(vm_heap_t *heap, vm_segment_t **from) {
  vm_lock(&segments_lock);
  vm_segment_t *segment = *from;
  if (segment != NULL)
    unabandon(segment);
  vm_unlock(&segments_lock);
  if (segment == NULL)
    return false;
  /* Owner first, then the notify bits: a remote freer sets its bit before it reads the
   * owner, so either we see its bit here or it sees us and raises our hint. The bits stay
   * set for collect_list: a freer that told an abandoned page may push its block only
   * after the page is adopted below and marked FULL again, and that late block is what
   * the bit is there to fetch. (Read before adopting, which may free the segment.) */
  atomic_store_explicit(&segment->owner_heap, heap, memory_order_seq_cst);
  if (atomic_load_explicit(&segment->notify_pages, memory_order_seq_cst) != 0)
    atomic_store_explicit(&heap->notified, 1, memory_order_release);
  heap_list_update(heap, segment);
  /* Adopting the last live page may free it and with it the segment: stop there. */
  int remaining = segment->live_pages;
  for (int i = VM_FIRST_SLICE; remaining > 0 && i < VM_SLICES; i++) {
    vm_page_t *page = &segment->pages[i];
    if (page->in_use && page->head_offset == 0) {
      remaining--;
      vm_page_adopt(heap, page);
    }
  }
  return true;
}

/* Free slices that are still resident: freed and not yet purged, or purged lazily. A
 * purge may move slices between the two at any time, so this is a hint. */
static uint64_t resident_free_slices(const vm_segment_t *segment) {
  return __atomic_load_n(&segment->dirty_slices, __ATOMIC_RELAXED) |
         __atomic_load_n(&segment->lazy_slices, __ATOMIC_RELAXED);
}

/* The first slice of a run of `slices` free slices at a multiple of `align_slices` in one
 * of heap's segments (*segment), or -1. A run of resident free slices comes first, from
 * any segment: taking a fresh run instead would fault in new memory while the freed run
 * waits to be purged, so a heap that frees and allocates blocks of varying sizes would
 * walk through all of its segments' memory. Of the resident runs the shortest that fits
 * wins, the first of equals: small pages filling the holes keep the freed run of a big
 * block whole for the next big block, which would otherwise fault in a fresh run. Fresh
 * runs go first fit, in the first segment with room. */
static int heap_find_run(vm_heap_t *heap, size_t slices, size_t align_slices,
                         vm_segment_t **segment) {
  int best = -1, best_length = VM_SLICES + 1;
  for (vm_segment_t *s = heap->segments_avail; s != NULL && best_length > (int)slices;
       s = s->next) {
    int length;
    int first = best_fit(s->free_slices & resident_free_slices(s), slices, align_slices,
                         &length);
    if (first >= 0 && length < best_length) {
      best = first;
      best_length = length;
      *segment = s;
    }
  }
  if (best >= 0)
    return best;
  for (vm_segment_t *s = heap->segments_avail; s != NULL; s = s->next) {
    int first = first_fit(s->free_slices, slices, align_slices);
    if (first >= 0) {
      *segment = s;
      return first;
    }
  }
  return -1;
}

/* Before heap grows, when none of its segments has room for `slices` slices: the blocks
 * other threads freed into its full pages come back, and if that frees no room, heap
 * adopts the segment of a thread that exited. True when either brought room or pages:
 * look again. */
static bool make_room(vm_heap_t *heap, size_t slices, size_t align_slices) {
  vm_segment_collect_notified(heap);
  vm_segment_t *segment;
  return heap_find_run(heap, slices, align_slices, &segment) >= 0 ||
         adopt_one(heap, &abandoned);
}

/* make_room for a page of class_idx, when heap's segments have no room for one. What it
 * brings back joins heap's queues, where the caller may find a free block of the class
 * without carving a page (a thread that starts, allocates a block and exits, over and
 * over, would otherwise leave a page behind each time). */
bool vm_segment_make_room(vm_heap_t *heap, unsigned class_idx) {
  vm_segment_t *segment;
  size_t slices = vm_class_slices[class_idx];
  return heap_find_run(heap, slices, 1, &segment) < 0 && make_room(heap, slices, 1);
}

/* A run of `slices` slices starting at a multiple of `align_slices` (both powers of two
 * or counts <= 63), as a fresh page descriptor owned by heap; NULL when out of memory. */
vm_page_t *vm_segment_page_alloc(vm_heap_t *heap, size_t slices, size_t align_slices) {
  vm_assert(1, slices >= 1 && slices < (size_t)VM_SLICES);
  for (;;) {
    vm_segment_t *segment;
    int first = heap_find_run(heap, slices, align_slices, &segment);
    if (first >= 0)
      return carve_page(heap, segment, first, slices); /* NULL: out of commit charge */
    if (make_room(heap, slices, align_slices))
      continue;
    segment = segment_obtain(heap);
    if (segment == NULL)
      return NULL;
    heap_list_update(heap, segment);
  }
}

/* Returns a page's slices to its segment, for whoever holds the segment; true if that
 * was its last page. */
static bool return_slices(vm_page_t *page) {
  vm_segment_t *segment = vm_segment_of(page);
  int first = (int)(page - segment->pages);
  size_t count = page->slice_count;
  vm_assert(1, page->in_use && page->head_offset == 0);
  size_t guard = vm_large_guard_bytes(page);
  if (guard != 0 &&
      !vm_os_unguard(vm_page_area(segment, page) + count * VM_SLICE_SIZE - guard, guard)) {
    /* the slices would be handed out with a hole in them: stop rather than fault later */
    vm_diag_warn("vmalloc: cannot lift the guard page after a large block (mprotect failed)\n");
    abort();
  }
  memset(page, 0, sizeof *page);
  for (size_t i = 1; i < count; i++)
    segment->pages[first + (int)i].head_offset = 0;
  uint64_t bits = run_bits(first, count);
  vm_lock(&segment->lock);
  if (segment->dirty_slices == 0)
    segment->dirty_since_ms = vm_os_now_ms();
  segment->free_slices |= bits;
  segment->dirty_slices |= bits;
  vm_unlock(&segment->lock);
  segment->live_pages--;
  return segment->live_pages == 0;
}

/* Returns a page's slices to its segment; an empty segment leaves the heap. */
void vm_segment_page_free(vm_heap_t *heap, vm_page_t *page) {
  vm_segment_t *segment = vm_segment_of(page);
  if (return_slices(page)) {
    if (list_of(segment) != ON_NO_LIST)
      list_remove(heap_list(heap, segment), segment);
    segment_release(segment);
    return;
  }
  heap_list_update(heap, segment);
}

/* ---- remote frees into full pages -------------------------------------------------- */

/* Called by a remote freer that took the page's notify duty, before it pushes its block
 * (the block keeps the segment alive until then). The heap hint is only a hint: heaps
 * are never unmapped, and a heap also sweeps its segments before it grows. */
void vm_segment_note_notify(vm_segment_t *segment, vm_page_t *page) {
  uint64_t bit = (uint64_t)1 << (page - segment->pages);
  atomic_fetch_or_explicit(&segment->notify_pages, bit, memory_order_seq_cst);
  vm_heap_t *owner = atomic_load_explicit(&segment->owner_heap, memory_order_seq_cst);
  if (owner != NULL)
    atomic_store_explicit(&owner->notified, 1, memory_order_release);
}

static void collect_list(vm_heap_t *heap, vm_segment_t *list) {
  for (vm_segment_t *s = list, *next; s != NULL; s = next) {
    next = s->next; /* unfulling may free s */
    if (atomic_load_explicit(&s->notify_pages, memory_order_seq_cst) == 0)
      continue; /* the common case: a plain load, not a locked exchange */
    uint64_t bits = atomic_exchange_explicit(&s->notify_pages, 0, memory_order_seq_cst);
    while (bits != 0) {
      int i = __builtin_ctzll(bits);
      bits &= bits - 1;
      if (vm_page_unfull_notified(heap, &s->pages[i]))
        break; /* that was the segment's last page: the segment is gone */
    }
  }
}

/* Brings back to their queues the full pages of heap that got remote frees. */
void vm_segment_collect_notified(vm_heap_t *heap) {
  atomic_store_explicit(&heap->notified, 0, memory_order_seq_cst);
  collect_list(heap, heap->segments_full);
  collect_list(heap, heap->segments_avail);
}

/* ---- thread exit ------------------------------------------------------------------- */

/* Gives every segment of an exiting heap to the abandoned list. Pages keep their blocks
 * and their FULL state; other threads go on freeing into them remotely. */
void vm_segment_abandon_all(vm_heap_t *heap) {
  vm_segment_t *lists[2] = {heap->segments_avail, heap->segments_full};
  heap->segments_avail = heap->segments_full = NULL;
  for (int l = 0; l < 2; l++) {
    for (vm_segment_t *s = lists[l], *next; s != NULL; s = next) {
      next = s->next;
      s->next = s->prev = NULL;
      set_list(s, ON_NO_LIST);
      for (int i = VM_FIRST_SLICE; i < VM_SLICES; i++) {
        vm_page_t *page = &s->pages[i];
        if (page->in_use && page->head_offset == 0) {
          atomic_store_explicit(&s->remote[i].abandoned_used, page->used, memory_order_relaxed);
          page->owner &= VM_PAGE_FLAGS;
        }
      }
      atomic_store_explicit(&s->owner_heap, NULL, memory_order_seq_cst);
      abandon(s);
    }
  }
}

/* Takes an abandoned segment off the list for the caller alone to hold, as adopt_one
 * does but for no heap; false if a heap adopted it or another thread holds it. */
bool vm_segment_hold_abandoned(vm_segment_t *segment) {
  vm_lock(&segments_lock);
  bool held = is_abandoned(segment);
  if (held)
    unabandon(segment);
  vm_unlock(&segments_lock);
  return held;
}

/* Called by a thread about to free a block into an abandoned segment (the block keeps
 * the segment alive until it lands): a segment that had no room has some now, and moves
 * to where adopters look. */
void vm_segment_abandoned_gains_room(vm_segment_t *segment) {
  if (list_of(segment) != ON_ABANDONED_FULL)
    return; /* the common case: moved by an earlier free already */
  vm_lock(&segments_lock);
  if (list_of(segment) == ON_ABANDONED_FULL) {
    list_remove(&abandoned_full, segment);
    list_push(&abandoned, segment, ON_ABANDONED);
  }
  vm_unlock(&segments_lock);
}

/* Lets go of a held abandoned segment after giving back every page whose blocks have all
 * come back, and the segment itself to the cache once it is empty. Their memory is then
 * free for the purge schedule and for other heaps, not kept until a heap that runs out
 * of room adopts the segment: a thread that exits leaving its blocks for others to free
 * would otherwise hold its pages for as long as no heap does. */
void vm_segment_unhold_abandoned(vm_segment_t *segment) {
  int remaining = segment->live_pages;
  for (int i = VM_FIRST_SLICE; remaining > 0 && i < VM_SLICES; i++) {
    vm_page_t *page = &segment->pages[i];
    if (page->in_use && page->head_offset == 0) {
      remaining--;
      if (vm_page_all_back(page))
        return_slices(page);
    }
  }
  if (segment->live_pages == 0)
    segment_release(segment);
  else
    abandon(segment);
}

/* Gives back, for malloc_trim, the pages of abandoned segments whose blocks have all come
 * back, and the segments left empty. They stay abandoned otherwise: adopted into the
 * trimming thread's heap, their blocks that other threads free later would wait on
 * remote lists for a thread that may never allocate again to collect them. */
void vm_segment_tidy_abandoned(void) {
  vm_lock(&segments_lock);
  vm_segment_t *held = NULL;
  vm_segment_t *lists[2] = {abandoned, abandoned_full};
  for (int l = 0; l < 2; l++)
    for (vm_segment_t *s = lists[l], *next; s != NULL; s = next) {
      next = s->next;
      unabandon(s);
      s->next = held;
      held = s;
    }
  vm_unlock(&segments_lock);
  for (vm_segment_t *s = held, *next; s != NULL; s = next) {
    next = s->next;
    s->next = NULL;
    vm_segment_unhold_abandoned(s);
  }
}

/* ---- huge blocks ------------------------------------------------------------------- */

/* Freed huge mappings (of up to HUGE_CACHE_MAPPING_MAX) are kept for a program that frees
 * and allocates big blocks in a loop: reusing one costs no mmap, and no page fault where
 * its pages are still resident. What a cached mapping costs is its resident pages, so
 * that is what the cache counts: this many bytes, or more when a loop needs more: as
 * many as the huge blocks in use fell short of their recent peak, which is what
 * allocating them all again takes. A block the program touched sparsely costs little to
 * keep; the address space the cache holds is bounded apart (page tables, VMAs). Each is
 * unmapped once unused for VMALLOC_PURGE_DELAY_MS (see purge_all) or by a trim, and the
 * peak then falls to what is still mapped. */
#define HUGE_CACHE_BYTES ((size_t)32 << 20)
#define HUGE_CACHE_MAPPING_MAX ((size_t)64 << 20)
#define HUGE_CACHE_MAPPED_MAX ((size_t)1 << 30)

/* How many resident bytes the cache may hold now (segments_lock held). */
static size_t huge_cache_limit(void) {
  size_t shortfall = huge_recent_peak - huge_bytes;
  return shortfall > HUGE_CACHE_BYTES ? shortfall : HUGE_CACHE_BYTES;
}

/* Notes a new total of huge bytes in use (segments_lock held). */
static void huge_bytes_set(size_t bytes) {
  huge_bytes = bytes;
  if (bytes > huge_recent_peak)
    huge_recent_peak = bytes;
}

/* Takes a mapping off the huge cache (segments_lock held), onto *doomed if given. */
static void huge_uncache(vm_segment_t *segment, vm_segment_t **doomed) {
  list_remove(&huge_cache, segment);
  huge_cache_bytes -= segment->size;
  huge_cache_resident_bytes -= segment->huge_resident;
  if (doomed != NULL) {
    segment->next = *doomed;
    *doomed = segment;
  }
}

/* Whether the cache would be over its bounds with `segment` in it too (lock held). */
static bool huge_cache_over(const vm_segment_t *segment) {
  return huge_cache_resident_bytes + segment->huge_resident > huge_cache_limit() ||
         huge_cache_bytes + segment->size > HUGE_CACHE_MAPPED_MAX;
}

/* Measures, once, what a mapping holds resident (lock held; `cached`: it is on the cache). */
static void huge_measure(vm_segment_t *segment, bool cached) {
  if (segment->huge_measured)
    return;
  size_t resident = vm_os_resident_bytes(segment, segment->size);
  if (cached)
    huge_cache_resident_bytes -= segment->huge_resident - resident;
  segment->huge_resident = resident;
  segment->huge_measured = 1;
}

/* Takes the oldest cached mappings off the cache until `segment` fits (lock held). A
 * mapping counts as wholly resident until the cache would have to give one up (or realloc
 * would copy into it); only then does mincore say what each holds. So a program whose huge
 * blocks fit makes no such call (glibc never does, and a sandbox's system call filter may
 * not allow it). */
static void huge_cache_evict(vm_segment_t *segment, vm_segment_t **doomed) {
  if (!huge_cache_over(segment))
    return;
  huge_measure(segment, false);
  for (vm_segment_t *s = huge_cache; s != NULL; s = s->next)
    huge_measure(s, true);
  while (huge_cache != NULL && huge_cache_over(segment)) {
    vm_segment_t *oldest = huge_cache;
    while (oldest->next != NULL)
      oldest = oldest->next;
    huge_uncache(oldest, doomed);
  }
}

/* The smallest cached mapping of at least `bytes`, or NULL (segments_lock held). */
static vm_segment_t *huge_cache_fit(size_t bytes) {
  vm_segment_t *best = NULL;
  for (vm_segment_t *s = huge_cache; s != NULL; s = s->next)
    if (s->size >= bytes && (best == NULL || s->size < best->size))
      best = s;
  return best;
}

/* Whether the cached mapping a block of `bytes` (header included) would be given has at
 * least half of them resident, measured: counted whole, a sparse one would pass. */
bool vm_segment_huge_cache_resident(size_t bytes) {
  vm_lock(&segments_lock);
  vm_segment_t *fit = huge_cache_fit(bytes);
  if (fit != NULL)
    huge_measure(fit, true);
  bool resident = fit != NULL && fit->huge_resident >= bytes / 2;
  vm_unlock(&segments_lock);
  return resident;
}

/* The smallest cached mapping of at least `bytes`; NULL when none is. It comes whole if it
 * is up to four times the block it is for (`block_bytes`: bytes less the header's offset,
 * which an aligned block makes large): a block that realloc grows (a buffer, a vector)
 * grows into it with no system call, and into its resident pages with no page fault. A
 * bigger one is cut down to the block. But memory past the block that the program may
 * never use would stay resident for as long as the block lives: sort frees its 50 MiB
 * buffer and allocates four of 12.5 MiB, and the first would keep 37.5 MiB more than it
 * asked for. So when the part past the block is more than the block again and at least
 * HUGE_IDLE_EXCESS, mincore says how much of it is resident, and if that much is, it
 * goes back first. (A sparse mapping, or a smaller excess, is kept as it is.) */
#define HUGE_IDLE_EXCESS ((size_t)8 << 20)
static vm_segment_t *huge_cache_take(size_t bytes, size_t block_bytes) {
  vm_lock(&segments_lock);
  vm_segment_t *best = huge_cache_fit(bytes);
  if (best != NULL)
    huge_uncache(best, NULL);
  vm_unlock(&segments_lock);
  if (best == NULL)
    return NULL;
  size_t excess = best->size - bytes;
  if (excess > 3 * block_bytes && vm_os_resize_in_place(best, best->size, bytes)) {
    vm_segment_huge_set_size(best, bytes);
    return best;
  }
  if (excess <= block_bytes || excess < HUGE_IDLE_EXCESS ||
      (best->huge_measured && best->huge_resident < HUGE_IDLE_EXCESS))
    return best;
  size_t resident = vm_os_resident_bytes((uint8_t *)best + bytes, excess);
  if (resident > block_bytes && resident >= HUGE_IDLE_EXCESS &&
      vm_os_purge((uint8_t *)best + bytes, excess, true) == VM_PURGE_DONE)
    vm_huge_dropped_from(best, bytes);
  return best;
}

/* Unmaps the cached huge mappings unused since `before` (all, with force). */
static void huge_cache_expire(int64_t before, bool force) {
  vm_segment_t *doomed = NULL;
  vm_lock(&segments_lock);
  for (vm_segment_t *s = huge_cache, *next; s != NULL; s = next) {
    next = s->next;
    if (force || s->cached_since_ms <= before)
      huge_uncache(s, &doomed);
  }
  huge_recent_peak = huge_bytes + huge_cache_bytes;
  vm_unlock(&segments_lock);
  unmap_segments(doomed);
}

/* A dedicated mapping for one block of `size` bytes aligned to `alignment`. The header
 * sits at a segment-aligned address below the block, within one segment of it, so that
 * free finds it by masking (or, for alignments of a segment or more, one segment down). */
vm_segment_t *vm_segment_huge_alloc(size_t size, size_t alignment, size_t *block_offset) {
  size_t page = vm_os_page_size();
  size_t guard = vm_check_level() >= 3 ? page : 0;
  size = vm_align_up(size, page) + guard;
  size_t offset = vm_align_up(sizeof(vm_segment_t), alignment > page ? alignment : page);
  vm_segment_t *segment;
  bool fresh = true;
  if (offset < VM_SEGMENT_SIZE) {
    segment = guard == 0 ? huge_cache_take(offset + size, size) : NULL;
    if (segment != NULL)
      fresh = false;
    else
      segment = vm_os_reserve_aligned(offset + size, VM_SEGMENT_SIZE, false);
  } else {
    /* block at an `alignment` boundary, header one segment below it */
    uint8_t *raw = vm_os_reserve_aligned(alignment + size, alignment, false);
    if (raw == NULL)
      return NULL;
    offset = VM_SEGMENT_SIZE;
    segment = (vm_segment_t *)(raw + alignment - VM_SEGMENT_SIZE);
    vm_os_release(raw, alignment - VM_SEGMENT_SIZE);
  }
  if (segment == NULL)
    return NULL;
  if (fresh)
    segment->size = vm_align_up(offset + size, page);
  segment->huge_fresh = fresh;
  segment->kind = VM_SEGMENT_HUGE;
  segment->huge_block_offset = offset;
  segment->huge_guard = guard;
  if (guard != 0 && !vm_os_guard((uint8_t *)segment + segment->size - guard, guard))
    segment->huge_guard = 0; /* no guard, but a usable block all the same */
  segment->free_slices = 0;
  segment->live_pages = 1;
  *block_offset = offset;
  vm_segment_huge_attach(segment);
  return segment;
}

/* Makes a huge mapping known: to free (the registry) and to the census. */
void vm_segment_huge_attach(vm_segment_t *segment) {
  vm_registry_add(segment);
  vm_lock(&segments_lock);
  list_push(&huge_list, segment, ON_NO_LIST);
  huge_count++;
  huge_bytes_set(huge_bytes + segment->size);
  vm_unlock(&segments_lock);
}

/* Resizes a huge mapping where it is (growing only if the addresses after it are free);
 * false, the mapping unchanged, if it cannot. */
bool vm_segment_huge_resize(vm_segment_t *segment, size_t new_size) {
  size_t old_size = segment->size;
  if (!vm_os_resize_in_place(segment, old_size, new_size))
    return false;
  vm_lock(&segments_lock); /* the census reads size and huge_bytes under it */
  huge_bytes_set(huge_bytes - old_size + new_size);
  vm_segment_huge_set_size(segment, new_size);
  vm_unlock(&segments_lock);
  return true;
}

/* The reverse, before a huge mapping is unmapped or moved. */
void vm_segment_huge_detach(vm_segment_t *segment) {
  vm_lock(&segments_lock);
  list_remove(&huge_list, segment);
  huge_count--;
  huge_bytes -= segment->size;
  vm_unlock(&segments_lock);
  vm_registry_remove(segment);
}

void vm_segment_huge_free(vm_segment_t *segment) {
  vm_segment_huge_detach(segment);
  vm_segment_t *doomed = segment;
  doomed->next = NULL;
  /* guarded (VMALLOC_CHECK=3) and segment-aligned blocks go: they are rare and odd */
  if (segment->huge_guard == 0 && segment->huge_block_offset < VM_SEGMENT_SIZE &&
      segment->size <= HUGE_CACHE_MAPPING_MAX) {
    segment->cached_since_ms = vm_os_now_ms();
    segment->huge_resident = segment->size;
    segment->huge_measured = 0;
    vm_lock(&segments_lock);
    doomed = NULL;
    huge_cache_evict(segment, &doomed);
    list_push(&huge_cache, segment, ON_CACHE);
    huge_cache_bytes += segment->size;
    huge_cache_resident_bytes += segment->huge_resident;
    vm_unlock(&segments_lock);
  }
  unmap_segments(doomed);
}

/* ---- census and fork --------------------------------------------------------------- */

/* The resident bytes of the slices in mask, given each slice's. */
static size_t resident_in(const size_t slice_resident[VM_SLICES], uint64_t mask) {
  size_t total = 0;
  for (; mask != 0; mask &= mask - 1)
    total += slice_resident[__builtin_ctzll(mask)];
  return total;
}

/* Fills census by walking every segment under the lock. Pages of other threads change
 * meanwhile; the walk reads their descriptors with relaxed loads, so the figures are
 * each true at some instant of the walk. measure: also count resident bytes (mincore). */
void vm_segment_census(vm_census_t *census, bool measure) {
  memset(census, 0, sizeof *census);
  vm_lock(&segments_lock);
  census->huge_blocks = huge_count;
  census->huge_bytes = huge_bytes;
  census->cached_segments = cache_count;
  census->cached_huge_bytes = huge_cache_bytes;
  census->abandoned_segments = abandoned_count;
  for (vm_segment_t *s = abandoned_full; s != NULL; s = s->next)
    census->abandoned_full_segments++;
  vm_segment_t *huge_mappings[] = {huge_list, huge_cache}; /* in use, and kept for reuse */
  for (int l = 0; measure && l < 2; l++)
    for (vm_segment_t *s = huge_mappings[l]; s != NULL; s = s->next) {
      size_t resident = vm_os_resident_bytes(s, s->size);
      census->resident_bytes += resident;
      if (l == 1)
        census->freed_resident_bytes += resident;
    }
  for (vm_segment_t *s = all_segments; s != NULL; s = s->all_next) {
    census->segments++;
    census->segment_bytes += s->size;
    uint64_t lazy = __atomic_load_n(&s->lazy_slices, __ATOMIC_RELAXED);
    size_t slice_resident[VM_SLICES] = {0};
    if (measure) {
      census->resident_bytes +=
          vm_os_resident_bytes_by_part(s, VM_SEGMENT_SIZE, VM_SLICE_SIZE, slice_resident);
      census->lazy_resident_bytes += resident_in(slice_resident, lazy);
      census->freed_resident_bytes +=
          resident_in(slice_resident, __atomic_load_n(&s->dirty_slices, __ATOMIC_RELAXED));
    }
    census->lazy_bytes += slice_bytes(lazy);
    census->clean_bytes += slice_bytes(__atomic_load_n(&s->zero_slices, __ATOMIC_RELAXED));
    if (list_of(s) == ON_CACHE)
      continue;
    census->free_slice_bytes += slice_bytes(__atomic_load_n(&s->free_slices, __ATOMIC_RELAXED));
    for (int i = VM_FIRST_SLICE; i < VM_SLICES; i++) {
      vm_page_t *page = &s->pages[i];
      if (!__atomic_load_n(&page->in_use, __ATOMIC_RELAXED) ||
          __atomic_load_n(&page->head_offset, __ATOMIC_RELAXED) != 0)
        continue;
      /* read while the owner may be between raising pin_held and used: never below 0 */
      size_t counted = __atomic_load_n(&page->used, __ATOMIC_RELAXED);
      size_t held = __atomic_load_n(&page->pin_held, __ATOMIC_RELAXED);
      size_t used = counted > held ? counted - held : 0;
      size_t block = __atomic_load_n(&page->block_size, __ATOMIC_RELAXED);
      unsigned class_idx = __atomic_load_n(&page->class_idx, __ATOMIC_RELAXED);
      size_t slices = __atomic_load_n(&page->slice_count, __ATOMIC_RELAXED);
      size_t span = slices * VM_SLICE_SIZE;
      census->pages++;
      census->live_bytes += used * block;
      census->free_bytes_in_pages += span > used * block ? span - used * block : 0;
      if (class_idx <= VM_CLASS_COUNT) {
        census->class_live_blocks[class_idx] += used;
        census->class_pages[class_idx]++;
        /* blocks in use are taken as resident */
        size_t resident = resident_in(slice_resident, run_bits(i, slices));
        census->class_resident_free[class_idx] +=
            resident > used * block ? resident - used * block : 0;
      }
    }
  }
  vm_unlock(&segments_lock);
}

void vm_segment_lock_all(void) { vm_lock(&segments_lock); }

void vm_segment_unlock_all(bool in_child) {
  /* A child has only the forking thread: a segment lock that another parent thread held
   * across fork would never be released. (A purger holds segments_lock too, so none
   * is mid-purge; the list is stable while we hold it.) */
  if (in_child)
    for (vm_segment_t *s = all_segments; s != NULL; s = s->all_next)
      vm_unlock(&s->lock);
  vm_unlock(&segments_lock);
}

/* ---- giving memory back ------------------------------------------------------------ */

/* Adopts every abandoned segment into heap (whose pages then give their empty pages
 * back); true if there were any. Heaps adopt one at a time as they need room and
 * malloc_trim adopts none: this is for tests that need an adoption now. */
bool vm_segment_adopt_all(vm_heap_t *heap) {
  bool any = false;
  while (adopt_one(heap, &abandoned) || adopt_one(heap, &abandoned_full))
    any = true;
  return any;
}

/* Lazily purged memory stays in the RSS until the kernel needs it, so a program that
 * frees a lot and then fills new memory would count both: it is held to an eighth of
 * the segments mapped (at least two segments' worth), and a purge past that drops its
 * slices at once (see segment_purge). */
static _Atomic(size_t) lazy_bytes;

static void lazy_forget(uint64_t slices) {
  atomic_fetch_sub_explicit(&lazy_bytes, slice_bytes(slices), memory_order_relaxed);
}

size_t vm_segment_lazy_bytes(void) {
  return atomic_load_explicit(&lazy_bytes, memory_order_relaxed);
}

static bool lazy_budget_allows(uint64_t slices) {
  size_t budget = atomic_load_explicit(&segment_bytes_mapped, memory_order_relaxed) / 8;
  if (budget < 2 * VM_SEGMENT_SIZE)
    budget = 2 * VM_SEGMENT_SIZE;
  return atomic_load_explicit(&lazy_bytes, memory_order_relaxed) + slice_bytes(slices) <= budget;
}

/* The purge policy. Freed slices are dirty; after VMALLOC_PURGE_DELAY_MS they are purged
 * with MADV_FREE (lazy: cheap, and the memory is still there if the heap wants it back
 * before the kernel does); slices still lazy after VMALLOC_PURGE_ESCALATE_MS more are
 * purged with MADV_DONTNEED, so resident memory really falls. A forced purge (trim) does
 * the last step at once for everything free. Under strict overcommit the last step
 * decommits, which also returns the commit charge. With transparent huge pages only
 * whole free 2 MiB halves are purged, so no huge page is broken up. */
typedef struct {
  vm_purge_result_t wanted_lazy; /* the step being applied: lazy or done */
  bool scheduled;                /* not a trim: drops are noted (see vm_purge_note_reuse) */
  int64_t now;
  size_t purged;
} purge_step_t;

static void purge_run(vm_segment_t *segment, int first, int count, void *arg) {
  purge_step_t *step = arg;
  uint64_t bits = run_bits(first, (size_t)count);
  size_t len = (size_t)count * VM_SLICE_SIZE;
  uint8_t *p = slice_address(segment, first);
  vm_purge_result_t result;
  if (step->wanted_lazy == VM_PURGE_LAZY)
    result = vm_os_purge(p, len, false);
  else if (vm_os_strict_commit())
    result = vm_os_decommit(p, len) ? VM_PURGE_DONE : VM_PURGE_REFUSED;
  else
    result = vm_os_purge(p, len, true);
  segment->dirty_slices &= ~bits;
  lazy_forget(segment->lazy_slices & bits);
  segment->lazy_slices &= ~bits;
  if (result == VM_PURGE_LAZY) {
    segment->lazy_slices |= bits;
    atomic_fetch_add_explicit(&lazy_bytes, len, memory_order_relaxed);
  } else if (result == VM_PURGE_DONE) {
    segment->zero_slices |= bits;
    if (vm_os_strict_commit())
      segment->committed_slices &= ~bits;
    if (step->scheduled) {
      segment->dropped_slices |= bits;
      segment->dropped_ms = step->now;
      vm_purge_note_dropped(len);
    }
  }
  /* refused (locked memory): the slices stay resident; no use asking again */
  if (result != VM_PURGE_REFUSED)
    step->purged += len;
}

/* Only the slices of fully free 2 MiB halves, when huge pages are on. */
static uint64_t huge_page_friendly(uint64_t candidates, uint64_t free_slices) {
  if (!vm_os_huge_pages())
    return candidates;
  const uint64_t half = ((uint64_t)1 << (VM_SLICES / 2)) - 1;
  uint64_t keep = 0;
  for (int shift = 0; shift < VM_SLICES; shift += VM_SLICES / 2)
    if (((free_slices >> shift) & half) == half)
      keep |= half << shift;
  return candidates & keep;
}

/* Applies the policy to one segment at time now; returns the bytes purged. */
static size_t segment_purge(vm_segment_t *segment, int64_t now, bool force) {
  int64_t delay = vm_purge_delay_ms();
  int64_t escalate = vm_purge_escalate_ms();
  purge_step_t step = {VM_PURGE_DONE, !force, now, 0};
  vm_lock(&segment->lock);
  if ((segment->dirty_slices | segment->lazy_slices) == 0) {
    vm_unlock(&segment->lock);
    return 0;
  }
  uint64_t to_lazy = 0, to_done = 0;
  if (force) {
    to_done = segment->dirty_slices | segment->lazy_slices;
  } else {
    if (segment->dirty_slices != 0 && now - segment->dirty_since_ms >= delay)
      to_lazy = segment->dirty_slices;
    if (segment->lazy_slices != 0 && now - segment->lazy_since_ms >= escalate)
      to_done = segment->lazy_slices;
  }
  to_done = huge_page_friendly(to_done, segment->free_slices);
  to_lazy = huge_page_friendly(to_lazy, segment->free_slices);
  if (to_lazy != 0 && !lazy_budget_allows(to_lazy)) {
    to_done |= to_lazy;
    to_lazy = 0;
  }
  for_each_run(segment, to_done, purge_run, &step);
  if (to_lazy != 0) {
    bool had_lazy = segment->lazy_slices != 0;
    step.wanted_lazy = VM_PURGE_LAZY;
    for_each_run(segment, to_lazy, purge_run, &step);
    if (!had_lazy)
      segment->lazy_since_ms = now;
  }
  vm_unlock(&segment->lock);
  return step.purged;
}

/* The purge clock of a heap: called on its slow paths, it purges its own segments on
 * schedule. Cheap when nothing is due: one coarse clock read. */
void vm_segment_purge_tick(vm_heap_t *heap) {
  int64_t now = vm_os_now_ms();
  if (now < heap->purge_next_ms)
    return;
  vm_purge_relax(now);
  int64_t delay = vm_purge_delay_ms();
  int64_t escalate = vm_purge_escalate_ms();
  int64_t step = (delay < escalate ? delay : escalate) / 2;
  heap->purge_next_ms = now + (step > 1 ? step : 1);
  vm_segment_t *lists[2] = {heap->segments_avail, heap->segments_full};
  for (int l = 0; l < 2; l++)
    for (vm_segment_t *s = lists[l]; s != NULL; s = s->next)
      segment_purge(s, now, false);
  vm_heap_purge_pages(heap, false);
  vm_segment_purge_shared(now, false);
}

/* Moves the purge schedule of heap's segments `ms` later (see vm_heap_resume). */
void vm_segment_postpone_purge(vm_heap_t *heap, int64_t ms) {
  heap->purge_next_ms += ms;
  vm_segment_t *lists[2] = {heap->segments_avail, heap->segments_full};
  for (int l = 0; l < 2; l++)
    for (vm_segment_t *s = lists[l]; s != NULL; s = s->next) {
      vm_lock(&s->lock);
      s->dirty_since_ms += ms;
      s->lazy_since_ms += ms;
      vm_unlock(&s->lock);
    }
}

/* Purges the segments no heap looks after (cached and abandoned); with all_heaps, every
 * segment of every heap too (trim, the background thread). Returns the bytes purged. */
static size_t purge_all(int64_t now, bool force, bool all_heaps) {
  size_t purged = 0;
  vm_lock(&segments_lock);
  for (vm_segment_t *s = all_segments; s != NULL; s = s->all_next)
    if (all_heaps || atomic_load_explicit(&s->owner_heap, memory_order_acquire) == NULL)
      purged += segment_purge(s, now, force); /* cached or abandoned, or all_heaps */
  /* the cache beyond its reserve: unmapped once empty for both delays (oldest last) */
  vm_segment_t *doomed = NULL;
  int64_t linger = vm_purge_delay_ms() + vm_purge_escalate_ms();
  size_t reserve = (size_t)vm_option(VM_OPTION_SEGMENT_CACHE);
  for (vm_segment_t *s = cache, *next; s != NULL && cache_count > reserve; s = next) {
    next = s->next;
    if (force || now - s->cached_since_ms >= linger)
      uncache(s, &doomed);
  }
  vm_unlock(&segments_lock);
  unmap_segments(doomed);
  huge_cache_expire(now - vm_purge_delay_ms(), force);
  return purged;
}

/* Segments that no heap ticks for: called from any heap's tick, at most every few ms. */
void vm_segment_purge_shared(int64_t now, bool force) {
  static _Atomic(int64_t) next_ms;
  int64_t due = atomic_load_explicit(&next_ms, memory_order_relaxed);
  if (!force && now < due)
    return;
  int64_t delay = vm_purge_delay_ms();
  if (!atomic_compare_exchange_strong(&next_ms, &due, now + (delay > 2 ? delay / 2 : 1)))
    return; /* another thread is doing it */
  vm_heap_release_parked(now, force);
  purge_all(now, force, false);
}

/* Purges every segment of every heap; force: everything free, at once. */
size_t vm_segment_purge_everything(bool force) {
  return purge_all(vm_os_now_ms(), force, true);
}
