/* Pages: one page serves one size class from its own free lists (see vm_page_t). This
 * file holds the single malloc slow path for classes, the class queues of a heap, and
 * the free path for everything the inline fast path (internal.h) does not take. */
#include <string.h>

#include "internal.h"

/* The foreign cache (blocks of other threads' pages), with the free path below. */
static vm_block_t *foreign_take(vm_heap_t *heap, unsigned c);
static void foreign_flush(vm_heap_t *heap);

/* ---- class queues ------------------------------------------------------------------ */

/* How many blocks page_extend carves at a time. */
static size_t page_extend_count(const vm_page_t *page) {
  size_t count = VM_EXTEND_BYTES / page->block_size;
  return count < 1 ? 1 : count;
}

/* The current page (the first of its queue) holds one extra count in `used` while it is
 * no bigger than one extension, so a malloc/free loop on it never empties it. Past that,
 * the free that gives back its last block leaves the fast path (see vm_page_retire). */
static bool small_enough_to_hold_pin(const vm_page_t *page) {
  return page->capacity <= page_extend_count(page);
}
static void pin_hold(vm_page_t *page) {
  page->pin_held = 1;
  page->used++;
}
static void pin_release(vm_page_t *page) {
  page->pin_held = 0;
  page->used--;
}
static void pin(vm_page_t *page) {
  page->pinned = 1;
  if (small_enough_to_hold_pin(page))
    pin_hold(page);
}
static void unpin(vm_page_t *page) {
  page->pinned = 0;
  if (page->pin_held)
    pin_release(page);
}

static void queue_unlink(vm_page_queue_t *queue, vm_page_t *page) {
  if (page->prev != NULL)
    page->prev->next = page->next;
  else
    queue->first = page->next;
  if (page->next != NULL)
    page->next->prev = page->prev;
  else
    queue->last = page->prev;
  page->next = page->prev = NULL;
}

/* Makes page the current page of its class. The page it displaces is full in every path
 * that gets here, but if it is empty after all it goes back to its segment. */
static void queue_push_front(vm_heap_t *heap, vm_page_t *page) {
  vm_page_queue_t *queue = &heap->queues[page->class_idx];
  vm_page_t *displaced = queue->first;
  page->prev = NULL;
  page->next = displaced;
  if (displaced != NULL)
    displaced->prev = page;
  else
    queue->last = page;
  queue->first = page;
  pin(page);
  vm_heap_direct_update(heap, page->class_idx);
  if (displaced != NULL) {
    unpin(displaced);
    if (displaced->used == 0) {
      queue_unlink(queue, displaced);
      vm_segment_page_free(heap, displaced);
    }
  }
}

static void queue_push_back(vm_heap_t *heap, vm_page_t *page) {
  vm_page_queue_t *queue = &heap->queues[page->class_idx];
  if (queue->first == NULL) {
    queue_push_front(heap, page);
    return;
  }
  page->next = NULL;
  page->prev = queue->last;
  queue->last->next = page;
  queue->last = page;
}

/* Takes page off its queue; if it was the current page, the next one becomes current. */
void vm_page_queue_remove(vm_heap_t *heap, vm_page_t *page) {
  vm_page_queue_t *queue = &heap->queues[page->class_idx];
  bool was_first = queue->first == page;
  queue_unlink(queue, page);
  if (was_first) {
    unpin(page);
    if (queue->first != NULL)
      pin(queue->first);
    vm_heap_direct_update(heap, page->class_idx);
  }
}

/* Gives up the current pages' pins, for a heap that is going away. */
void vm_heap_unpin_all(vm_heap_t *heap) {
  for (unsigned c = 1; c <= VM_CLASS_COUNT; c++)
    if (heap->queues[c].first != NULL)
      unpin(heap->queues[c].first);
}

/* ---- page state -------------------------------------------------------------------- */

static uintptr_t owner_of(const vm_page_t *page) {
  return atomic_load_explicit(&page->owner, memory_order_relaxed);
}
static void set_owner(vm_page_t *page, uintptr_t owner) {
  atomic_store_explicit(&page->owner, owner, memory_order_relaxed);
}

/* What a page owned by heap has in its owner word: the heap, and the flags that send
 * every free of its blocks off the fast path. */
uintptr_t vm_page_owner_word(const vm_heap_t *heap) {
  return (uintptr_t)heap | (vm_check_level() >= 2 ? VM_PAGE_CHECKED : 0) |
         (vm_counting() ? VM_PAGE_COUNTED : 0);
}

/* At the start of block k, the low half of offset * block_magic is k * step, where step
 * (magic * size - 2^64) lies in [1, size]; at any other offset below 2^32 it is at least
 * magic (2^64 / size), far above capacity * step. So "below capacity * step" says, in one
 * multiply and one compare, that p starts a block the page has carved: not one inside a
 * block, in the slack after the last block, or past the blocks carved so far. */
static uint64_t block_limit_for(const vm_page_t *page) {
  uint64_t step = page->block_magic * page->block_size;
  return (uint64_t)page->capacity * step;
}
static void update_block_limit(vm_page_t *page) {
  atomic_store_explicit(&page->block_limit, block_limit_for(page), memory_order_relaxed);
}

/* Sets a page's block size and the constant that divides by it (see block_magic). */
void vm_page_set_block_size(vm_page_t *page, size_t size) {
  page->block_size = (uint32_t)size;
  /* floor(2^64 / size) + 1; UINT64_MAX / size falls one short when size divides 2^64 */
  page->block_magic = UINT64_MAX / size + (vm_is_pow2(size) ? 1 : 0) + 1;
  update_block_limit(page);
}

/* How many of a page's blocks have been carved: the blocks free accepts. */
void vm_page_set_capacity(vm_page_t *page, uint16_t capacity) {
  page->capacity = capacity;
  update_block_limit(page);
}

void vm_page_init(vm_heap_t *heap, vm_page_t *page, unsigned class_idx) {
  page->class_idx = (uint8_t)class_idx;
  vm_page_set_capacity(page, 0); /* first: a page taken over keeps no old block valid */
  vm_page_set_block_size(page, vm_class_size[class_idx]);
  page->area_low = (uint32_t)(uintptr_t)vm_page_area(vm_segment_of(page), page);
  page->reserved = (uint16_t)(page->slice_count * VM_SLICE_SIZE / page->block_size);
  page->used = 0;
  page->pinned = 0;
  page->pin_held = 0;
  page->free = NULL;
  page->next = page->prev = NULL;
  atomic_store_explicit(vm_page_thread_free(page), 0, memory_order_relaxed);
  set_owner(page, vm_page_owner_word(heap));
  page->clean_from = page->zeroed ? 0 : (uint16_t)(page->reserved + 1);
  page->carved_peak = page->carved_peak_before = 0;
  page->idle_looks = 0;
}

/* The low 32 bits of a time in ms, never 0 (see tail_dropped_ms). */
static uint32_t ms_stamp(int64_t ms) {
  uint32_t stamp = (uint32_t)ms;
  return stamp != 0 ? stamp : 1;
}

/* Carving up to block `end` takes back the blocks of the tail the clock dropped, if any:
 * the purge schedule hears how soon (see vm_purge_note_reuse). */
static void note_tail_reuse(vm_page_t *page, size_t end) {
  size_t from = page->capacity > page->clean_from ? page->capacity : page->clean_from;
  if (end > page->tail_dropped_to)
    end = page->tail_dropped_to;
  if (page->tail_dropped_ms == 0 || end <= from)
    return;
  int64_t now = vm_os_now_ms();
  vm_purge_note_reuse((end - from) * page->block_size,
                      (uint32_t)(ms_stamp(now) - page->tail_dropped_ms), now);
}

/* Carves the next few never-used blocks onto the free list: a few KiB at a time, so
 * memory is touched as it is used. */
static void page_extend(vm_page_t *page) {
  size_t size = page->block_size;
  size_t count = page_extend_count(page);
  if (count > (size_t)(page->reserved - page->capacity))
    count = (size_t)(page->reserved - page->capacity);
  note_tail_reuse(page, (size_t)page->capacity + count);
  uint8_t *first = vm_page_area(vm_segment_of(page), page) + (size_t)page->capacity * size;
  uintptr_t secret = vm_secret.list_secret;
  int level = vm_check_level();
  if (level >= 2)
    vm_check_junk_fresh(first, count, size);
  if (level >= 3) {
    page->free = vm_check_shuffled_list(first, count, size, page->free, secret);
  } else {
    uint8_t *last = first + (count - 1) * size;
    for (uint8_t *b = first; b < last; b += size)
      vm_block_set_next((vm_block_t *)b, (vm_block_t *)(b + size), secret);
    vm_block_set_next((vm_block_t *)last, page->free, secret);
    page->free = (vm_block_t *)first;
  }
  vm_page_set_capacity(page, (uint16_t)(page->capacity + count));
  if (page->capacity > page->clean_from)
    page->clean_from = page->capacity;
  if (page->pin_held && !small_enough_to_hold_pin(page))
    pin_release(page); /* every block is handed out: used stays above 0 */
}

/* Moves the blocks other threads freed onto the free list; returns how many. */
size_t vm_page_collect(vm_page_t *page) {
  /* A non-empty remote list never carries the notify bit: the push that filled it
   * cleared it. So taking everything and leaving 0 behind is right. */
  if (atomic_load_explicit(vm_page_thread_free(page), memory_order_relaxed) <= VM_THREAD_FREE_NOTIFY)
    return 0;
  uintptr_t remote = atomic_exchange_explicit(vm_page_thread_free(page), 0, memory_order_acquire);
  vm_block_t *list = (vm_block_t *)(remote & VM_THREAD_FREE_BLOCK_MASK);
  size_t count = remote >> VM_THREAD_FREE_COUNT_SHIFT;
  if (page->free != NULL) {
    /* rare (malloc collects when the free list is empty): append the free list to the
     * remote one, which means finding its tail; the usual case touches no block, so
     * the blocks' cache lines move to this thread only as malloc hands them out */
    uintptr_t secret = vm_secret.list_secret;
    vm_block_t *tail = list;
    for (size_t i = 1; i < count; i++)
      tail = vm_block_next(tail, secret);
    vm_block_set_next(tail, page->free, secret);
  }
  page->free = list;
  vm_assert(1, page->used >= count);
  page->used -= (uint16_t)count;
  return count;
}

static bool page_has_room(const vm_page_t *page) {
  return page->free != NULL || page->capacity < page->reserved;
}

/* Marks a page that has no free block FULL, taking it off its queue if it is on one. Fails
 * (and the page keeps its place) when a remote free arrived meanwhile: then there is
 * something to collect. */
static bool page_try_mark_full(vm_heap_t *heap, vm_page_t *page, bool queued) {
  uintptr_t expected = 0;
  if (!atomic_compare_exchange_strong_explicit(vm_page_thread_free(page), &expected,
                                               VM_THREAD_FREE_NOTIFY, memory_order_acq_rel,
                                               memory_order_relaxed))
    return false;
  if (queued)
    vm_page_queue_remove(heap, page);
  set_owner(page, owner_of(page) | VM_PAGE_FULL);
  return true;
}

/* A FULL page that got blocks back returns to its queue (or, if it is a large page, to
 * its segment). Returns true if that freed the page's whole segment. */
static bool page_unfull(vm_heap_t *heap, vm_page_t *page) {
  atomic_fetch_and_explicit(vm_page_thread_free(page), ~(uintptr_t)VM_THREAD_FREE_NOTIFY,
                            memory_order_acq_rel);
  set_owner(page, owner_of(page) & ~(uintptr_t)VM_PAGE_FULL);
  vm_assert(1, page->class_idx != 0 || page->used == 0); /* a large page's block is back */
  if (page->class_idx == 0 || page->used == 0) {
    /* large pages have one block; empty class pages are not worth a queue slot */
    vm_segment_t *segment = vm_segment_of(page);
    bool last = segment->live_pages == 1;
    vm_segment_page_free(heap, page);
    return last;
  }
  queue_push_back(heap, page);
  return false;
}

/* For a notify bit: the page was FULL when some thread freed into it. Stale bits (the
 * page changed since) are ignored. Returns true if the page's segment was freed. */
bool vm_page_unfull_notified(vm_heap_t *heap, vm_page_t *page) {
  uintptr_t owner = owner_of(page);
  if (!page->in_use || page->head_offset != 0 ||
      (owner & ~(uintptr_t)VM_PAGE_FLAGS) != (uintptr_t)heap || !(owner & VM_PAGE_FULL))
    return false;
  if (vm_page_collect(page) == 0) {
    uintptr_t expected = 0; /* nothing came: re-arm, unless something comes right now */
    if (atomic_compare_exchange_strong_explicit(vm_page_thread_free(page), &expected,
                                                VM_THREAD_FREE_NOTIFY, memory_order_acq_rel,
                                                memory_order_relaxed))
      return false;
    if (expected == VM_THREAD_FREE_NOTIFY) {
      /* still armed: the freer that told us has not pushed its block yet. Unfulling now
       * would free a large page whose block is still on its way; look again later */
      vm_segment_note_notify(vm_segment_of(page), page);
      return false;
    }
    vm_page_collect(page);
  }
  return page_unfull(heap, page);
}

/* Takes over a page of an adopted segment: everything freed into it comes home, and it
 * goes on a queue, stays FULL, or (empty) goes back to the segment. */
void vm_page_adopt(vm_heap_t *heap, vm_page_t *page) {
  vm_assert(1, !page->pinned);
  set_owner(page, vm_page_owner_word(heap));
  vm_page_collect(page);
  /* the notify bit of an abandoned FULL page is ours to clear now */
  atomic_fetch_and_explicit(vm_page_thread_free(page), ~(uintptr_t)VM_THREAD_FREE_NOTIFY,
                            memory_order_acq_rel);
  for (;;) {
    if (page->used == 0) {
      vm_segment_page_free(heap, page);
      return;
    }
    if (page->class_idx != 0 && page_has_room(page)) {
      queue_push_back(heap, page);
      return;
    }
    if (page_try_mark_full(heap, page, false)) /* an adopted page is on no queue yet */
      return;
    vm_page_collect(page);
  }
}

/* What collect_pages does with a page that has no block in use. */
typedef enum { EMPTY_FREE_UNLESS_CURRENT, EMPTY_FREE, EMPTY_RESTART } empty_page_action_t;

/* Takes in what other threads freed into heap's pages (the FULL ones they freed into
 * rejoin their queues first) and deals with the pages left with no block in use. */
static void collect_pages(vm_heap_t *heap, empty_page_action_t action) {
  if (atomic_load_explicit(&heap->notified, memory_order_relaxed))
    vm_segment_collect_notified(heap);
  for (unsigned c = 1; c <= VM_CLASS_COUNT; c++) {
    for (vm_page_t *page = heap->queues[c].first, *next; page != NULL; page = next) {
      next = page->next;
      vm_page_collect(page);
      if (page->used != page->pin_held)
        continue;
      if (action == EMPTY_RESTART) {
        if (page->pin_held)
          pin_release(page);
        vm_page_retire(heap, page);
      } else if (action == EMPTY_FREE || !page->pinned) {
        vm_page_queue_remove(heap, page);
        vm_segment_page_free(heap, page);
      }
    }
  }
}

/* Frees the empty pages of heap's queues (force: the current pages too), after sending
 * the blocks of other heaps that it keeps home. */
void vm_heap_collect_pages(vm_heap_t *heap, bool force) {
  foreign_flush(heap);
  collect_pages(heap, force ? EMPTY_FREE : EMPTY_FREE_UNLESS_CURRENT);
}

/* ---- memory inside pages goes back ------------------------------------------------
 * A page hands out its blocks from its start (page_extend), so the blocks it has not
 * carved are one range at its end, its tail. The tail can hold resident memory no block
 * uses: the page was made of slices an earlier page or big block left resident (a 576
 * KiB page of 40 KiB blocks made where a big block was keeps 536 KiB for one block in
 * use), or it started again from its first block (vm_page_retire). The purge clock looks
 * at every page with room every half purge delay: the part of the tail that no carving
 * reached in the last two looks goes back with MADV_DONTNEED, and a block carved there
 * later faults its pages in as it is written. A page that carves and starts again in a
 * loop keeps what the loop reaches. A page that nobody has allocated from or freed into
 * for two looks gives the free blocks past its last block in use back to its tail
 * (uncarve_free_end), and malloc_trim does so at once for every page. malloc_trim also
 * gives back, at once, the OS pages inside the other free blocks bigger than an OS page;
 * smaller blocks share their OS pages. */

static size_t purge_range(uintptr_t from, uintptr_t to) {
  size_t os_page = vm_os_page_size();
  from = vm_align_up(from, os_page);
  to &= ~(uintptr_t)(os_page - 1);
  if (to <= from || vm_os_purge((void *)from, to - from, true) != VM_PURGE_DONE)
    return 0;
  return to - from;
}

/* Gives back the tail past block `from` up to where it is clean already. */
static size_t purge_tail_from(vm_page_t *page, uint16_t from) {
  if (page->clean_from <= from)
    return 0;
  uintptr_t area = (uintptr_t)vm_page_area(vm_segment_of(page), page);
  uintptr_t end = page->clean_from > page->reserved
                      ? area + (size_t)page->slice_count * VM_SLICE_SIZE /* and the slack */
                      : area + (size_t)page->clean_from * page->block_size;
  page->clean_from = from;
  return purge_range(area + (size_t)from * page->block_size, end);
}

/* The OS pages inside the free blocks, past the bytes a free block keeps
 * (vm_check_free_span). */
static size_t purge_free_blocks(vm_page_t *page) {
  size_t keep = vm_check_free_span(page->block_size);
  uintptr_t secret = vm_secret.list_secret;
  size_t purged = 0;
  for (vm_block_t *block = page->free; block != NULL;) {
    purged += purge_range((uintptr_t)block + keep, (uintptr_t)block + page->block_size);
    vm_block_t *next = vm_block_next(block, secret);
    block = vm_block_next_leaves(block, next) ? NULL : next; /* the end, or a corrupt link */
  }
  return purged;
}

static uint16_t max16(uint16_t a, uint16_t b) { return a > b ? a : b; }

#define IDLE_LOOKS_TO_UNCARVE 2
#define MAX_PAGE_BLOCKS (VM_SLICE_SIZE / VM_ALIGN) /* a one-slice page of the least class */

/* Walks a page's list: false if a link leaves the page's carved blocks or the list holds
 * more blocks than the page (a loop); else *count is its length, and with a map, bit i
 * of it is set for each block i on the list. */
static bool map_free_list(const vm_page_t *page, const vm_block_t *list, uint64_t *map,
                          size_t *count) {
  uint8_t *area = vm_page_area(vm_segment_of(page), page);
  size_t n = 0;
  for (const vm_block_t *b = list; b != NULL; b = vm_block_next(b, vm_secret.list_secret)) {
    size_t offset = (size_t)((const uint8_t *)b - area);
    size_t index = offset / page->block_size;
    if ((const uint8_t *)b < area || offset % page->block_size != 0 ||
        index >= page->capacity || ++n > page->capacity)
      return false;
    if (map != NULL)
      map[index / 64] |= (uint64_t)1 << (index % 64);
  }
  *count = n;
  return true;
}

/* Remembers the page as this look of the purge clock leaves it. */
static void remember_look(vm_page_t *page) {
  page->look_free = page->free;
  page->look_used = page->used;
}

/* Whether the purge clock's looks have found the page unchanged for IDLE_LOOKS_TO_UNCARVE
 * looks in a row, just now: a page stays idle for long, but one walk of its list is
 * enough. The list head and the count in use tell: carving moves the head too. (A malloc
 * and a free of the same block in between look like no change, and do no harm: the block
 * is back.) */
static bool just_became_idle(vm_page_t *page) {
  bool unchanged = page->free == page->look_free && page->used == page->look_used &&
                   atomic_load_explicit(vm_page_thread_free(page), memory_order_relaxed) == 0;
  remember_look(page);
  if (!unchanged)
    page->idle_looks = 0;
  else if (page->idle_looks <= IDLE_LOOKS_TO_UNCARVE)
    page->idle_looks++;
  return page->idle_looks == IDLE_LOOKS_TO_UNCARVE;
}

/* For the thread that takes a parked heap: a page left with no block in use starts again
 * from its first block, or goes back to its segment if its class has others
 * (vm_page_retire). The next blocks then go out in address order, as from a new page,
 * rather than in the order they were freed. The time the heap spent parked does not
 * count towards purging what it holds, nor as a look at an idle page: nobody could
 * reuse its memory meanwhile, and the new thread is about to. Otherwise a thread pool
 * whose threads come and go a little slower than the purge delay would purge each
 * heap as its next thread starts, and fault the memory back in at once. */
void vm_heap_resume(vm_heap_t *heap, int64_t parked_for_ms) {
  vm_segment_postpone_purge(heap, parked_for_ms);
  collect_pages(heap, EMPTY_RESTART);
  for (unsigned c = 1; c <= VM_CLASS_COUNT; c++)
    for (vm_page_t *page = heap->queues[c].first; page != NULL; page = page->next) {
      remember_look(page);
      page->idle_looks = 0;
    }
}

/* Leaves the page with `list` as its free list and its blocks from `keep` on uncarved. */
static void uncarve_from(vm_page_t *page, vm_block_t *list, size_t keep) {
  page->free = list;
  vm_page_set_capacity(page, (uint16_t)keep);
  if (page->pinned && !page->pin_held && small_enough_to_hold_pin(page))
    pin_hold(page);
}

/* Whether the free blocks at the page's end come to enough that walking its free list,
 * which touches every free block, pays: a whole OS page, and on the clock also an eighth
 * of what the page has carved. A page whose blocks in use are spread to its end would
 * otherwise be walked for nothing each time it goes idle. The freed-block mark tells,
 * reading only the blocks at the end; it is a guess (a block in quarantine carries it
 * too), which the walk then makes exact. Without the mark (VMALLOC_CHECK=0) only wholly
 * free pages are uncarved. */
static bool free_end_worth_a_walk(const vm_page_t *page, bool force) {
  if (vm_secret.freed_key == 0)
    return false;
  uint8_t *area = vm_page_area(vm_segment_of(page), page);
  size_t end = page->capacity;
  while (end > 0 && vm_page_block_is_freed((vm_block_t *)(area + (end - 1) * page->block_size)))
    end--;
  size_t free_bytes = (size_t)(page->capacity - end) * page->block_size;
  size_t carved_bytes = (size_t)page->capacity * page->block_size;
  return free_bytes >= vm_os_page_size() && (force || free_bytes >= carved_bytes / 8);
}

/* Makes the free blocks past the page's last block in use uncarved again: they join the
 * tail, which the purge clock gives back, and are carved afresh when needed. A page
 * whose long-lived blocks came early (most do: pages carve in address order) and whose
 * later blocks were all freed keeps only what holds them; glibc's heap gets the same
 * effect by coalescing free chunks into its top. Leaves a free list it cannot walk to
 * malloc, which reports it. */
static void uncarve_free_end(vm_page_t *page, bool force) {
  uint64_t map[MAX_PAGE_BLOCKS / 64];
  size_t free_count;
  if (page->free == NULL || page->capacity > MAX_PAGE_BLOCKS)
    return;
  if (page->used == page->pin_held) { /* every block is free: nothing to walk */
    uncarve_from(page, NULL, 0);
    return;
  }
  if (!free_end_worth_a_walk(page, force))
    return;
  memset(map, 0, (page->capacity + 63) / 64 * sizeof map[0]);
  if (!map_free_list(page, page->free, map, &free_count))
    return;
  size_t keep = page->capacity; /* just past the last block not on the list */
  while (keep > 0 && (map[(keep - 1) / 64] >> ((keep - 1) % 64) & 1))
    keep--;
  if (keep == page->capacity)
    return;
  uintptr_t secret = vm_secret.list_secret;
  uint8_t *area = vm_page_area(vm_segment_of(page), page);
  vm_block_t *head = NULL, *tail = NULL;
  for (vm_block_t *b = page->free, *next; b != NULL; b = next) {
    next = vm_block_next(b, secret);
    if ((size_t)((uint8_t *)b - area) / page->block_size >= keep)
      continue;
    if (tail != NULL)
      vm_block_set_next(tail, b, secret);
    else
      head = b;
    tail = b;
  }
  if (tail != NULL)
    vm_block_set_next(tail, NULL, secret);
  uncarve_from(page, head, keep);
}

/* One look of the purge clock at the pages of heap's queues (every page with room, so
 * every page with a tail); with force (malloc_trim) everything free goes at once, blocks
 * freed by other threads first. Returns the bytes given back. With huge pages on, the
 * clock leaves them alone: these ranges are smaller than a huge page and would break
 * one up (a trim asks for that). */
size_t vm_heap_purge_pages(vm_heap_t *heap, bool force) {
  if (!force && vm_os_huge_pages())
    return 0;
  size_t purged = 0;
  for (unsigned c = 1; c <= VM_CLASS_COUNT; c++) {
    for (vm_page_t *page = heap->queues[c].first; page != NULL; page = page->next) {
      if (just_became_idle(page) || force) {
        vm_page_collect(page);
        uncarve_free_end(page, force);
        remember_look(page);
      }
      uint16_t reached = page->capacity;
      if (!force)
        reached = max16(reached, max16(page->carved_peak, page->carved_peak_before));
      uint16_t dropped_to = page->clean_from > page->reserved ? page->reserved : page->clean_from;
      size_t dropped = purge_tail_from(page, reached);
      if (dropped != 0 && !force) {
        if (page->tail_dropped_ms != 0) /* an earlier drop not yet carved again stays so */
          dropped_to = max16(dropped_to, page->tail_dropped_to);
        page->tail_dropped_to = dropped_to;
        page->tail_dropped_ms = ms_stamp(vm_os_now_ms());
        vm_purge_note_dropped(dropped);
      }
      purged += dropped;
      page->carved_peak_before = max16(page->capacity, page->carved_peak);
      page->carved_peak = 0;
      if (force && vm_class_size[c] > vm_os_page_size())
        purged += purge_free_blocks(page); /* its remote frees were collected above */
    }
  }
  return purged;
}

/* ---- the malloc slow path for classes ---------------------------------------------- */

/* A page of the class's queue with a free block, made the current page, or NULL. Pages
 * found full on the way are marked so and leave the queue. */
static vm_page_t *queued_page_with_room(vm_heap_t *heap, unsigned class_idx) {
  vm_page_queue_t *queue = &heap->queues[class_idx];
  for (vm_page_t *page = queue->first, *next; page != NULL; page = next) {
    next = page->next;
    vm_page_collect(page);
    if (page->free == NULL && page->capacity < page->reserved)
      page_extend(page);
    if (page->free == NULL && page_try_mark_full(heap, page, true))
      continue;
    vm_page_collect(page); /* a remote free may have beaten the mark */
    if (page->free == NULL)
      continue;
    if (page != queue->first) {
      vm_page_queue_remove(heap, page);
      queue_push_front(heap, page);
    }
    return page;
  }
  return NULL;
}

/* For a class of big blocks (pages of several slices) that needs a page: the page of
 * another such class that has no block in use and is kept only as its class's last page
 * (pinned), made over to class_idx. A buffer grown by
 * realloc, or a hash table resized, passes through one class after the next; without
 * this each class it passed through keeps a page with the memory of the block it had
 * there, in every thread that grew one: about 0.8 MiB for one pass from 10 to 128 KiB.
 * The page's memory goes to the next class in the pass instead. */
static vm_page_t *take_idle_page(vm_heap_t *heap, unsigned class_idx) {
  size_t slices = vm_class_slices[class_idx];
  if (slices == 1)
    return NULL;
  for (unsigned c = VM_SMALL_CLASSES + 1; c <= VM_CLASS_COUNT; c++) {
    vm_page_t *page = heap->queues[c].first;
    if (page == NULL || page->next != NULL || page->used != page->pin_held ||
        vm_class_slices[c] != slices)
      continue;
    /* the tail it never touched stays known clean, in the new class's blocks */
    size_t clean_bytes = page->clean_from > page->reserved
                             ? SIZE_MAX
                             : (size_t)page->clean_from * page->block_size;
    vm_page_queue_remove(heap, page);
    page->zeroed = 0;
    vm_page_init(heap, page, class_idx);
    if (clean_bytes != SIZE_MAX)
      page->clean_from = (uint16_t)((clean_bytes + page->block_size - 1) / page->block_size);
    return page;
  }
  return NULL;
}

/* A page of class_idx with a free block, made the current page; NULL if out of memory.
 * The full pages that other threads freed into are looked for only when the queue has
 * no room: finding them walks every segment of the heap, and a heap that others free
 * into all the time would walk them for every page it fills. Before a new page, the
 * queue is looked at again after vm_segment_make_room. */
static vm_page_t *find_page(vm_heap_t *heap, unsigned class_idx) {
  vm_segment_purge_tick(heap);
  vm_purge_background_ensure();
  vm_page_t *page = queued_page_with_room(heap, class_idx);
  if (page == NULL && atomic_load_explicit(&heap->notified, memory_order_relaxed)) {
    vm_segment_collect_notified(heap);
    page = queued_page_with_room(heap, class_idx);
  }
  if (page == NULL && vm_segment_make_room(heap, class_idx))
    page = queued_page_with_room(heap, class_idx);
  if (page != NULL)
    return page;
  page = take_idle_page(heap, class_idx);
  if (page == NULL) {
    page = vm_segment_page_alloc(heap, vm_class_slices[class_idx], 1);
    if (page == NULL)
      return NULL;
    vm_page_init(heap, page, class_idx);
  }
  page_extend(page);
  queue_push_front(heap, page);
  return page;
}

/* Everything malloc's fast path does not do, for sizes up to VM_MEDIUM_MAX. */
void *vm_page_malloc_slow(vm_heap_t *heap, size_t n) {
  unsigned class_idx = vm_class_of(n);
  if (heap->foreign[class_idx] != NULL)
    return foreign_take(heap, class_idx);
  vm_page_t *page = find_page(heap, class_idx);
  if (page == NULL)
    return NULL;
  return vm_page_pop(page, page->free, vm_secret.list_secret);
}

/* Pop, when the next link leaves the segment: the list's last block, or a link written
 * after free (or overrun). A corrupt rest of the list is dropped (its blocks leak):
 * nothing on it can be trusted; the block itself was on the list legitimately. */
void *vm_page_pop_last(vm_page_t *page, vm_block_t *block, vm_block_t *next) {
  if (next != NULL)
    vm_diag_misuse("corrupted free list at %p (%zu-byte blocks; a write after free?) in malloc()",
                   (void *)block, (size_t)page->block_size);
  page->free = NULL;
  page->used++;
  block->freed = 0;
  return block;
}

/* ---- free, other than the fast path ------------------------------------------------ */

/* A page whose last block came back goes back to its segment. So does the current page,
 * unless it is the only page of its class: it then starts again from its first block.
 * Either way its blocks go out next in address order, not in the order they were
 * freed, and a page that held short-lived blocks does not stay current to take the
 * long-lived ones allocated next, which would keep it from ever emptying again. */
void vm_page_retire(vm_heap_t *heap, vm_page_t *page) {
  if (page->pinned && page->next == NULL) {
    if (page->capacity > page->carved_peak)
      page->carved_peak = page->capacity;
    uncarve_from(page, NULL, 0);
    return;
  }
  if (page->class_idx != 0)
    vm_page_queue_remove(heap, page);
  vm_segment_page_free(heap, page);
  vm_segment_purge_tick(heap);
}

/* For the holder of a page's abandoned segment: whether every block of the page is back,
 * with those freed onto its remote list taken in. (Any more would be a second free.) */
bool vm_page_all_back(vm_page_t *page) {
  uintptr_t remote = atomic_load_explicit(vm_page_thread_free(page), memory_order_acquire);
  if ((remote >> VM_THREAD_FREE_COUNT_SHIFT) != page->used)
    return false;
  vm_page_collect(page);
  return page->used == 0;
}

/* For a thread abandoning a page: whether an adopter would find a free block in it (on
 * its lists, not yet carved, or freed by another thread). */
bool vm_page_offers_room(const vm_page_t *page) {
  if (page->class_idx != 0 && page_has_room(page))
    return true;
  uintptr_t remote = atomic_load_explicit(vm_page_thread_free(page), memory_order_relaxed);
  return (remote >> VM_THREAD_FREE_COUNT_SHIFT) != 0;
}

/* Pushes a block onto another thread's page with one CAS. When the page is FULL and armed,
 * this freer tells the owner first: until its block lands, the page cannot be freed. */
static void push_remote(vm_page_t *page, vm_block_t *block) {
  uintptr_t old = atomic_load_explicit(vm_page_thread_free(page), memory_order_relaxed);
  bool told = false;
  for (;;) {
    if ((old & VM_THREAD_FREE_NOTIFY) && !told) {
      vm_segment_note_notify(vm_segment_of(page), page);
      told = true;
    }
    vm_block_set_next(block, (vm_block_t *)(old & VM_THREAD_FREE_BLOCK_MASK),
                      vm_secret.list_secret);
    uintptr_t count = (old >> VM_THREAD_FREE_COUNT_SHIFT) + 1;
    if (atomic_compare_exchange_weak_explicit(vm_page_thread_free(page), &old,
                                              (uintptr_t)block | count << VM_THREAD_FREE_COUNT_SHIFT,
                                              memory_order_release, memory_order_relaxed))
      return;
  }
}

/* A free into a page of an exited thread's segment. The one that brings back the page's
 * last block gives the page back to the segment at once, if this thread can hold the
 * segment (see vm_segment_unhold_abandoned). An adopter may be taking the page meanwhile:
 * then holding fails, and the block goes on the remote list as usual. */
static VM_NOINLINE void free_into_abandoned(vm_page_t *page, vm_block_t *block) {
  vm_segment_t *segment = vm_segment_of(page);
  uintptr_t remote = atomic_load_explicit(vm_page_thread_free(page), memory_order_relaxed);
  uint16_t used = atomic_load_explicit(&segment->remote[page - segment->pages].abandoned_used,
                                       memory_order_relaxed);
  bool held =
      (remote >> VM_THREAD_FREE_COUNT_SHIFT) + 1 == used && vm_segment_hold_abandoned(segment);
  if (!held) /* before the push: until the block lands, nobody can free the segment */
    vm_segment_abandoned_gains_room(segment);
  push_remote(page, block);
  if (held)
    vm_segment_unhold_abandoned(segment);
}

/* A block of another thread's page goes on its remote list; owner_heap is the page's
 * owner word without its flags. (The loads before holding the segment are all atomic,
 * and holding it takes segments_lock, which orders the abandoning thread's writes.) */
static void free_remote(vm_page_t *page, vm_block_t *block, uintptr_t owner_heap) {
  if (vm_unlikely(owner_heap == 0))
    free_into_abandoned(page, block); /* no heap owns it: its thread exited */
  else
    push_remote(page, block);
}

/* The start of the block that holds p, or NULL if p is past the page's blocks. (Not
 * capacity: the owner may be raising it while another thread frees.) */
vm_block_t *vm_page_block_containing(vm_page_t *page, const void *p) {
  uint8_t *area = vm_page_area(vm_segment_of(page), page);
  size_t offset = (size_t)((uint8_t *)p - area);
  /* offset / block_size without a divide: offsets are below 2^32, where the high half
   * of offset * block_magic is the quotient */
  size_t index = (size_t)(((unsigned __int128)offset * page->block_magic) >> 64);
  if (index >= page->reserved)
    return NULL;
  return (vm_block_t *)(area + index * page->block_size);
}

/* Whether p is a block the page has handed out and not had back. If not, the misuse
 * report says how p misses, for the call `where`: freed already (a double free, or a use
 * after free for the other calls; the block need not be carved any more, as a page that
 * had all its blocks back may have been reset), inside a block, or no block at all.
 * Under VMALLOC_ON_ERROR=warn the report returns, and so does this, false. */
bool vm_page_live_block_or_report(vm_page_t *page, const void *p, const char *where,
                                  bool freeing) {
  if (vm_page_is_block_start(page, p) && !vm_page_block_is_freed(p))
    return true;
  vm_block_t *block = vm_page_block_containing(page, p);
  if (block == p && vm_page_block_is_freed(block)) {
    vm_diag_misuse("%s of %p (%zu-byte block) in %s", freeing ? "double free" : "use after free",
                   p, (size_t)page->block_size, where);
    return false;
  }
  if (block != NULL && block != p)
    vm_diag_misuse("invalid pointer %p (inside a %zu-byte block) in %s", p,
                   (size_t)page->block_size, where);
  else
    vm_diag_misuse("invalid pointer %p (not an allocated block) in %s", p, where);
  return false;
}

/* ---- blocks of other threads' pages ------------------------------------------------ */

/* A thread that frees blocks of other threads' pages keeps a few of each class and hands
 * them out again itself: the blocks are in its cache now, and sending each one home for
 * the owner to take from there would move it between caches twice (producer/consumer
 * pairs live on this). Their pages count them as used until they go home: past these
 * bounds, when the thread exits, or on vmalloc_collect and malloc_trim. */
#define VM_FOREIGN_MAX_BLOCKS 64
#define VM_FOREIGN_MAX_BYTES (16u << 10)

static bool foreign_keep(vm_heap_t *heap, const vm_page_t *page, vm_block_t *block,
                         uintptr_t owner_heap) {
  unsigned c = page->class_idx;
  if (c == 0 || heap == &vm_heap_empty)
    return false;
  /* a block smaller than a cache line shares its line with blocks the owner hands out:
   * reused here, two threads would write one line (false sharing) */
  if (page->block_size < 64)
    return false;
  /* a block of an exited thread goes home: kept, it would hold its page (and segment)
   * from the thread that takes them next. The heap is parked (not running) from the
   * thread's exit on, and a page of an abandoned segment has no owner */
  if (owner_heap == 0 || !vm_heap_running((const vm_heap_t *)owner_heap))
    return false;
  size_t count = heap->foreign_count[c];
  if (count >= VM_FOREIGN_MAX_BLOCKS || (count + 1) * page->block_size > VM_FOREIGN_MAX_BYTES)
    return false;
  vm_block_set_next(block, heap->foreign[c], heap->list_secret);
  heap->foreign[c] = block;
  heap->foreign_count[c] = (uint16_t)(count + 1);
  return true;
}

/* Takes a block of class c from the heap's foreign cache, or NULL. Its links cross
 * segments, so each is checked against the registry and (unless VMALLOC_CHECK=0 left
 * the key out) the freed key instead. */
static vm_block_t *foreign_take(vm_heap_t *heap, unsigned c) {
  vm_block_t *block = heap->foreign[c];
  if (block == NULL)
    return NULL;
  vm_block_t *next = NULL;
  if (--heap->foreign_count[c] != 0) {
    next = vm_block_next(block, heap->list_secret);
    if (vm_unlikely(!vm_registry_contains(vm_segment_of(next)) ||
                    (vm_secret.freed_key != 0 && !vm_page_block_is_freed(next)))) {
      vm_diag_misuse("corrupted free list at %p (%u-byte blocks; a write after free?) in malloc()",
                     (void *)block, vm_class_size[c]);
      next = NULL; /* warn: the rest of the list is lost (leaked), not followed */
      heap->foreign_count[c] = 0;
    }
  }
  heap->foreign[c] = next;
  block->freed = 0;
  return block;
}

/* ---- free, continued --------------------------------------------------------------- */

/* Pushes a block onto its page's free list: the calling thread's heap owns the page. */
static void release_local(vm_heap_t *heap, vm_page_t *page, vm_block_t *block) {
  uintptr_t owner = owner_of(page);
  vm_block_set_next(block, page->free, vm_secret.list_secret);
  page->free = block;
  page->used--;
  if (owner & VM_PAGE_FULL)
    page_unfull(heap, page);
  else if (page->used == 0)
    vm_page_retire(heap, page);
}

static uintptr_t owner_heap_of(const vm_page_t *page) {
  return owner_of(page) & ~(uintptr_t)VM_PAGE_FLAGS;
}
static bool is_owner(const vm_heap_t *heap, const vm_page_t *page) {
  return owner_heap_of(page) == (uintptr_t)heap;
}

/* Returns a block to its page, or keeps it in this thread's foreign cache. */
static void release_block(vm_page_t *page, vm_block_t *block) {
  vm_heap_t *heap = vm_heap_tls;
  block->freed = vm_secret.freed_key;
  uintptr_t owner_heap = owner_heap_of(page);
  if (owner_heap == (uintptr_t)heap)
    release_local(heap, page, block);
  else if (!foreign_keep(heap, page, block, owner_heap))
    free_remote(page, block, owner_heap);
}

/* Sends every block of the heap's foreign cache home. */
static void foreign_flush(vm_heap_t *heap) {
  for (unsigned c = 1; c <= VM_CLASS_COUNT; c++) {
    for (vm_block_t *block; (block = foreign_take(heap, c)) != NULL;) {
      block->freed = vm_secret.freed_key;
      vm_page_t *page = vm_page_of(vm_segment_of(block), block);
      uintptr_t owner_heap = owner_heap_of(page);
      if (owner_heap == (uintptr_t)heap) /* its segment was adopted meanwhile */
        release_local(heap, page, block);
      else
        free_remote(page, block, owner_heap);
    }
  }
}

/* VMALLOC_CHECK >= 2: the canary must be intact; at 3 the block then waits in quarantine,
 * and the blocks that leave it are released instead. */
static void checked_release(vm_page_t *page, vm_block_t *block) {
  if (!vm_check_on_free(block, page->block_size, page->class_idx != 0, "free()"))
    return; /* reported (warn): the block is leaked */
  if (vm_check_level() < 3) {
    release_block(page, block);
    return;
  }
  block->freed = vm_secret.freed_key; /* a second free finds it in quarantine */
  for (vm_block_t *b = vm_check_quarantine(block, page->block_size), *next; b != NULL; b = next) {
    next = b->next;
    release_block(vm_page_of(vm_segment_of(b), b), b);
  }
}

/* free() for every case the fast path leaves: FULL, HUGE or CHECKED pages, blocks of other
 * threads, blocks that look freed already, and pointers that are not ours to free. */
void vm_page_free_generic(vm_page_t *page, void *p) {
  uintptr_t owner = owner_of(page);
  if (vm_unlikely(!page->in_use)) {
    vm_diag_misuse("invalid pointer %p (not an allocated block; freed twice?) in free()", p);
    return;
  }
  if (owner & VM_PAGE_HUGE) {
    vm_segment_t *segment = vm_segment_of(page);
    if (vm_unlikely((uint8_t *)p != (uint8_t *)segment + segment->huge_block_offset)) {
      vm_diag_misuse("invalid pointer %p (inside a block) in free()", p);
      return;
    }
    if ((owner & VM_PAGE_CHECKED) &&
        !vm_check_on_free(p, vm_segment_huge_usable(segment), false, "free()"))
      return;
    if (owner & VM_PAGE_COUNTED)
      vm_count_free(p);
    vm_segment_huge_free(segment);
    return;
  }
  if (vm_unlikely(!vm_page_live_block_or_report(page, p, "free()", true)))
    return; /* warn: a freed block stays where it is */
  vm_block_t *block = p;
  if (owner & VM_PAGE_COUNTED) {
    vm_count_free(p);
    if (!is_owner(vm_heap_tls, page))
      vm_count_cross_thread_free();
  }
  if (owner & VM_PAGE_CHECKED)
    checked_release(page, block);
  else
    release_block(page, block);
}

/* ---- invariants -------------------------------------------------------------------- */

/* A page's identities (see vm_page_t). For its owner thread, or a quiescent heap. */
bool vm_page_is_valid(const vm_page_t *page) {
  size_t free_count;
  if (!page->in_use || page->head_offset != 0 || page->capacity > page->reserved)
    return false;
  if (page->class_idx != 0 && (page->block_size != vm_class_size[page->class_idx] ||
                               page->slice_count != vm_class_slices[page->class_idx]))
    return false;
  if (atomic_load_explicit(&page->block_limit, memory_order_relaxed) != block_limit_for(page))
    return false;
  if (!map_free_list(page, page->free, NULL, &free_count))
    return false;
  return page->pinned <= 1 && page->pin_held <= page->pinned &&
         page->used - page->pin_held + free_count == page->capacity;
}
