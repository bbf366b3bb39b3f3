/* Exact allocation counters: per size class (and for large and huge blocks) the blocks
 * handed out, freed, live and the peak of live; bytes requested and allocated; frees
 * from another thread. Kept only while VMALLOC_STATS is on, because counting every call
 * means taking every call off the fast paths (see vm_fast_paths_off): the report's cost,
 * paid only by whoever asks for it. The census (segment.c) needs no counting and is
 * always exact for what is live now; these add what happened over time. */
#include "internal.h"

#include <string.h>

typedef struct {
  _Atomic(size_t) allocs, frees, live, peak;
} bucket_t;

static bucket_t buckets[VM_COUNTER_BUCKETS];
static _Atomic(size_t) requested_bytes, allocated_bytes, live_bytes, peak_bytes;
static _Atomic(size_t) cross_thread_frees, threads_seen;

static void raise_peak(_Atomic(size_t) *peak, size_t value) {
  size_t seen = atomic_load_explicit(peak, memory_order_relaxed);
  while (value > seen &&
         !atomic_compare_exchange_weak_explicit(peak, &seen, value, memory_order_relaxed,
                                                memory_order_relaxed)) {
  }
}

static size_t add(_Atomic(size_t) *counter, size_t n) {
  return atomic_fetch_add_explicit(counter, n, memory_order_relaxed) + n;
}

static void sub(_Atomic(size_t) *counter, size_t n) {
  atomic_fetch_sub_explicit(counter, n, memory_order_relaxed);
}

/* The bucket of the block that starts at p (a block vmalloc handed out), and its size. */
static unsigned bucket_of(const void *p, size_t *size) {
  vm_segment_t *segment = vm_segment_of_block(p);
  if (segment->kind == VM_SEGMENT_HUGE) {
    *size = vm_segment_huge_usable(segment);
    return VM_COUNTER_HUGE;
  }
  vm_page_t *page = vm_page_of(segment, p);
  *size = page->block_size;
  return page->class_idx != 0 ? page->class_idx : VM_COUNTER_LARGE;
}

void vm_count_malloc(const void *p, size_t requested) {
  size_t size;
  bucket_t *bucket = &buckets[bucket_of(p, &size)];
  add(&bucket->allocs, 1);
  raise_peak(&bucket->peak, add(&bucket->live, 1));
  add(&requested_bytes, requested);
  add(&allocated_bytes, size);
  raise_peak(&peak_bytes, add(&live_bytes, size));
}

void vm_count_free(const void *p) {
  size_t size;
  bucket_t *bucket = &buckets[bucket_of(p, &size)];
  add(&bucket->frees, 1);
  sub(&bucket->live, 1);
  sub(&live_bytes, size);
}

/* A large or huge block of old_size bytes resized (in place or moved) to q for `requested` bytes:
 * the same block to the program, so only the byte counts change. */
void vm_count_resize(size_t old_size, const void *q, size_t requested) {
  size_t size;
  bucket_of(q, &size);
  add(&requested_bytes, requested);
  add(&allocated_bytes, size);
  sub(&live_bytes, old_size);
  raise_peak(&peak_bytes, add(&live_bytes, size));
}

void vm_count_cross_thread_free(void) { add(&cross_thread_frees, 1); }

void vm_count_thread(void) { add(&threads_seen, 1); }

void vm_counters_get(vm_counters_t *out) {
  memset(out, 0, sizeof *out);
  out->enabled = vm_counting();
  for (unsigned i = 0; i < VM_COUNTER_BUCKETS; i++) {
    out->buckets[i].allocs = atomic_load_explicit(&buckets[i].allocs, memory_order_relaxed);
    out->buckets[i].frees = atomic_load_explicit(&buckets[i].frees, memory_order_relaxed);
    out->buckets[i].live = atomic_load_explicit(&buckets[i].live, memory_order_relaxed);
    out->buckets[i].peak = atomic_load_explicit(&buckets[i].peak, memory_order_relaxed);
  }
  out->requested_bytes = atomic_load_explicit(&requested_bytes, memory_order_relaxed);
  out->allocated_bytes = atomic_load_explicit(&allocated_bytes, memory_order_relaxed);
  out->live_bytes = atomic_load_explicit(&live_bytes, memory_order_relaxed);
  out->peak_bytes = atomic_load_explicit(&peak_bytes, memory_order_relaxed);
  out->cross_thread_frees = atomic_load_explicit(&cross_thread_frees, memory_order_relaxed);
  out->threads_seen = atomic_load_explicit(&threads_seen, memory_order_relaxed);
}
