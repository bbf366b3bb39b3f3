/* Thread heaps: each thread allocates from its own heap, reached through one
 * initial-exec TLS pointer. A thread starts on the static empty heap, whose every page has
 * no free block, so "no heap yet" is just another fast-path miss. Heaps are carved from
 * mapped chunks and never unmapped; an exiting thread parks its heap in a pool, whole,
 * for the next thread to start (see vm_heap_release_parked). A thread that allocates after
 * its heap is gone (other TLS destructors run later) uses the shared backup heap, under a
 * lock. */
#include "internal.h"

#include <pthread.h>
#include <string.h>
#include <sys/auxv.h>

#define HEAP_CHUNK_SIZE ((size_t)64 << 10)

enum { THREAD_NEW, THREAD_RUNNING, THREAD_EXITED };

vm_page_t vm_page_empty;
vm_heap_t vm_heap_empty = {.direct = {[0 ... VM_DIRECT_SLOTS - 1] = &vm_page_empty}};
__thread vm_heap_t *vm_heap_tls __attribute__((tls_model("initial-exec"))) = &vm_heap_empty;
static __thread uint8_t thread_state __attribute__((tls_model("initial-exec")));

static vm_lock_t heaps_lock; /* the pool, the chunk and the list of all heaps */
static vm_heap_t *heap_pool;  /* parked heaps first, newest first; then empty ones */
static _Atomic(size_t) parked_count;
static vm_heap_t *all_heaps;
static uint8_t *chunk_next, *chunk_end;
static pthread_key_t exit_key;
static atomic_bool exit_key_ready;

static vm_lock_t backup_lock;
static vm_heap_t backup_heap = {.direct = {[0 ... VM_DIRECT_SLOTS - 1] = &vm_page_empty}};

/* Points the direct-table slots of a class at the class's current page. */
void vm_heap_direct_update(vm_heap_t *heap, unsigned class_idx) {
  /* checking tiers 2 and up, and counting, keep the table empty: every malloc then takes
   * the slow path */
  if (class_idx == 0 || vm_class_size[class_idx] > VM_DIRECT_MAX || vm_fast_paths_off())
    return;
  vm_page_t *page = heap->queues[class_idx].first;
  if (page == NULL)
    page = &vm_page_empty;
  size_t first = class_idx == 1 ? 0 : (vm_class_size[class_idx - 1] + VM_ALIGN) / VM_ALIGN;
  size_t last = vm_class_size[class_idx] / VM_ALIGN;
  for (size_t slot = first; slot <= last; slot++)
    heap->direct[slot] = page;
}

vm_secret_t vm_secret;

/* Draws the process's secrets from the kernel's random bytes (no system call, nothing
 * allocated). VMALLOC_CHECK=0 leaves them 0: lists plain but for the address, no key. */
void vm_heap_secrets_init(void) {
  if (!vm_option(VM_OPTION_CHECK))
    return;
  const uint8_t *random = (const uint8_t *)getauxval(AT_RANDOM);
  uint64_t words[2] = {0x9e3779b97f4a7c15u, 0xbf58476d1ce4e5b9u};
  if (random != NULL)
    memcpy(words, random, sizeof words);
  vm_secret.list_secret = (uintptr_t)words[0];
  vm_secret.freed_key = (uintptr_t)(words[1] | 1); /* never 0: 0 means "not freed" */
}

static void heap_reset(vm_heap_t *heap) {
  heap->list_secret = vm_secret.list_secret;
  heap->freed_key = vm_secret.freed_key;
  for (size_t i = 0; i < VM_DIRECT_SLOTS; i++)
    heap->direct[i] = &vm_page_empty;
  memset(heap->queues, 0, sizeof heap->queues);
  memset(heap->foreign, 0, sizeof heap->foreign);
  memset(heap->foreign_count, 0, sizeof heap->foreign_count);
  heap->segments_avail = heap->segments_full = NULL;
  atomic_store_explicit(&heap->notified, 0, memory_order_relaxed);
  heap->purge_next_ms = 0;
}

/* A heap from the pool or a new one; NULL when no memory can be mapped. A parked heap
 * comes as its last thread left it. */
static vm_heap_t *heap_obtain(void) {
  vm_lock(&heaps_lock);
  vm_heap_t *heap = heap_pool;
  if (heap != NULL) {
    heap_pool = heap->pool_next;
  } else {
    size_t size = vm_align_up(sizeof(vm_heap_t), 64);
    if (chunk_next == NULL || (size_t)(chunk_end - chunk_next) < size) {
      uint8_t *chunk = vm_os_map(HEAP_CHUNK_SIZE);
      if (chunk == NULL) {
        vm_unlock(&heaps_lock);
        return NULL;
      }
      chunk_next = chunk;
      chunk_end = chunk + HEAP_CHUNK_SIZE;
    }
    heap = (vm_heap_t *)chunk_next;
    chunk_next += size;
    heap->all_next = all_heaps;
    all_heaps = heap;
    heap->parked_ms = 0;
  }
  __atomic_store_n(&heap->in_use, 1, __ATOMIC_RELAXED);
  int64_t parked_ms = heap->parked_ms;
  if (parked_ms != 0) {
    heap->parked_ms = 0;
    atomic_fetch_sub_explicit(&parked_count, 1, memory_order_relaxed);
  }
  vm_unlock(&heaps_lock);
  if (parked_ms != 0)
    vm_heap_resume(heap, vm_os_now_ms() - parked_ms);
  else
    heap_reset(heap);
  return heap;
}

/* Puts empty heaps back in the pool, behind the parked ones. */
static void pool_append(vm_heap_t *empty) {
  if (empty == NULL)
    return;
  vm_lock(&heaps_lock);
  vm_heap_t **link = &heap_pool;
  while (*link != NULL)
    link = &(*link)->pool_next;
  *link = empty;
  vm_unlock(&heaps_lock);
}

/* What an exiting thread's heap holds goes: empty pages to their segments, the rest of
 * its segments to the abandoned list, for other heaps to adopt. */
static void heap_empty_out(vm_heap_t *heap) {
  vm_heap_collect_pages(heap, true);
  vm_heap_unpin_all(heap);
  vm_segment_abandon_all(heap);
  heap_reset(heap);
}

/* The pthread key destructor: the thread is exiting. Its heap is parked: the pages it
 * keeps are the ones the thread worked in, resident and carved, and the next thread to
 * start takes the heap as it is. A thread pool that ends its threads and starts new ones
 * (a Python ThreadPoolExecutor per batch, a thread per connection) would otherwise have
 * every new thread fault in memory again while the old threads' memory waits, abandoned,
 * to be purged. Other threads go on freeing into its pages as into any idle thread's. */
static void thread_exit(void *arg) {
  vm_heap_t *heap = arg;
  vm_heap_tls = &vm_heap_empty;
  thread_state = THREAD_EXITED;
  vm_heap_collect_pages(heap, false); /* blocks owed to other heaps go home now */
  vm_lock(&heaps_lock);
  __atomic_store_n(&heap->in_use, 0, __ATOMIC_RELAXED);
  heap->parked_ms = vm_os_now_ms();
  if (heap->parked_ms == 0)
    heap->parked_ms = 1;
  heap->pool_next = heap_pool;
  heap_pool = heap;
  atomic_fetch_add_explicit(&parked_count, 1, memory_order_relaxed);
  vm_unlock(&heaps_lock);
}

/* A parked heap that no thread took within the purge delay is emptied out, as an exiting
 * thread's heap was before parking, so that its memory follows the purge schedule; force
 * (trim): every parked heap, now. Called from the purge clock, which may run on the
 * backup heap's path with its lock held: the pool's lock is only tried then. */
void vm_heap_release_parked(int64_t now, bool force) {
  if (atomic_load_explicit(&parked_count, memory_order_relaxed) == 0)
    return;
  if (force)
    vm_lock(&heaps_lock);
  else if (!vm_trylock(&heaps_lock))
    return;
  int64_t delay = vm_purge_delay_ms();
  vm_heap_t *expired = NULL, **tail = &expired;
  for (vm_heap_t **link = &heap_pool; *link != NULL;) {
    vm_heap_t *heap = *link;
    if (heap->parked_ms != 0 && (force || now - heap->parked_ms >= delay)) {
      *link = heap->pool_next;
      heap->pool_next = NULL;
      heap->parked_ms = 0;
      atomic_fetch_sub_explicit(&parked_count, 1, memory_order_relaxed);
      *tail = heap;
      tail = &heap->pool_next;
    } else {
      link = &heap->pool_next;
    }
  }
  vm_unlock(&heaps_lock);
  for (vm_heap_t *heap = expired; heap != NULL; heap = heap->pool_next)
    heap_empty_out(heap);
  pool_append(expired);
}

/* Called once by process init: pthread_key_create does not allocate. */
void vm_heap_process_init(void) {
  heap_reset(&backup_heap); /* for the secrets */
  if (pthread_key_create(&exit_key, thread_exit) == 0)
    atomic_store_explicit(&exit_key_ready, true, memory_order_release);
}

/* The calling thread's heap, made on first use; NULL when the thread has already said
 * goodbye or no memory is left (the caller then uses the backup heap). */
vm_heap_t *vm_heap_for_thread(void) {
  if (vm_heap_tls != &vm_heap_empty)
    return vm_heap_tls;
  if (thread_state == THREAD_EXITED)
    return NULL;
  vm_init_process();
  vm_heap_t *heap = heap_obtain();
  if (heap == NULL)
    return NULL;
  vm_heap_tls = heap;
  thread_state = THREAD_RUNNING;
  vm_count_thread();
  /* after the heap is in place: pthread_setspecific may itself allocate */
  if (atomic_load_explicit(&exit_key_ready, memory_order_acquire))
    pthread_setspecific(exit_key, heap);
  vm_init_late();
  return heap;
}

void vm_heap_lock_backup(vm_heap_t **heap) {
  vm_lock(&backup_lock);
  *heap = &backup_heap;
}

void vm_heap_unlock_backup(void) { vm_unlock(&backup_lock); }

/* Takes the heap locks, for fork (see init.c). */
void vm_heap_lock_all(void) {
  vm_lock(&heaps_lock);
  vm_lock(&backup_lock);
}

void vm_heap_unlock_all(bool in_child) {
  (void)in_child;
  vm_unlock(&backup_lock);
  vm_unlock(&heaps_lock);
}

/* How many heaps are in use now, were ever made, and wait parked. */
void vm_heap_count(size_t *in_use, size_t *made, size_t *parked) {
  size_t live = 0, total = 0;
  vm_lock(&heaps_lock);
  for (vm_heap_t *h = all_heaps; h != NULL; h = h->all_next) {
    total++;
    live += h->in_use;
  }
  *parked = atomic_load_explicit(&parked_count, memory_order_relaxed);
  vm_unlock(&heaps_lock);
  *in_use = live;
  *made = total;
}

/* A heap's invariants (see vm_heap_t): its queues, their pages, the direct table, and that
 * no page of the heap's that should be on a queue is missing from it. */
bool vm_heap_is_valid(const vm_heap_t *heap) {
  for (unsigned c = 1; c <= VM_CLASS_COUNT; c++) {
    const vm_page_queue_t *queue = &heap->queues[c];
    const vm_page_t *prev = NULL;
    for (const vm_page_t *page = queue->first; page != NULL; page = page->next) {
      if (page->prev != prev || page->class_idx != c || page->pinned != (prev == NULL) ||
          atomic_load_explicit(&page->owner, memory_order_relaxed) != vm_page_owner_word(heap) ||
          !vm_page_is_valid(page))
        return false;
      prev = page;
    }
    if (queue->last != prev)
      return false;
    if (vm_class_size[c] <= VM_DIRECT_MAX && !vm_fast_paths_off()) { /* else kept empty */
      const vm_page_t *current = queue->first != NULL ? queue->first : &vm_page_empty;
      for (size_t n = vm_class_size[c - 1] + 1; n <= vm_class_size[c]; n++)
        if (heap->direct[(n + VM_ALIGN - 1) / VM_ALIGN] != current)
          return false;
    }
  }
  /* the converse: every class page of ours that is not FULL is on its queue */
  const vm_segment_t *lists[2] = {heap->segments_avail, heap->segments_full};
  for (int l = 0; l < 2; l++)
    for (const vm_segment_t *s = lists[l]; s != NULL; s = s->next)
      for (int i = VM_FIRST_SLICE; i < VM_SLICES; i++) {
        const vm_page_t *page = &s->pages[i];
        uintptr_t owner = atomic_load_explicit(&page->owner, memory_order_relaxed);
        if (!page->in_use || page->head_offset != 0 || page->class_idx == 0 ||
            (owner & ~(uintptr_t)VM_PAGE_FLAGS) != (uintptr_t)heap || (owner & VM_PAGE_FULL))
          continue;
        const vm_page_t *q = heap->queues[page->class_idx].first;
        while (q != NULL && q != page)
          q = q->next;
        if (q == NULL)
          return false;
      }
  return heap->direct[0] == heap->direct[1];
}
