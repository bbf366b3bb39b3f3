/* When memory goes back to the kernel, on demand: malloc_trim and vmalloc_collect. (The
 * schedule itself, delayed MADV_FREE escalating to MADV_DONTNEED, is in segment.c; the
 * heaps' slow paths and the optional background thread drive it.) Purging another heap's
 * free slices is safe: every change to a segment's slice masks happens under its lock. */
#include "internal.h"

/* Frees what the calling thread's heap holds empty, adopts the segments of exited
 * threads, and purges free memory everywhere: with force at once and with
 * MADV_DONTNEED, and unmapping the empty segments kept in the cache. Returns true if
 * memory was released. */
bool vm_purge_collect(bool force) {
  vm_heap_t *heap = vm_heap_tls;
  if (heap != &vm_heap_empty) {
    vm_segment_adopt_all(heap);
    vm_heap_collect_pages(heap, force);
  }
  bool released = vm_segment_purge_everything(force) > 0;
  if (force)
    released |= vm_segment_release_cache();
  return released;
}

/* malloc_trim(pad): vmalloc keeps no top-of-heap, so pad has nothing to apply to; it
 * gives back everything it can and says whether it did. */
int vm_purge_trim(size_t pad) {
  (void)pad;
  return vm_purge_collect(true) ? 1 : 0;
}
