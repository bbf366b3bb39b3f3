/* When memory goes back to the kernel. For now on demand only: malloc_trim and
 * vmalloc_collect. A heap can purge only its own free slices (another thread may be
 * carving them), so trim works on the calling thread's heap, the segments of exited
 * threads (which it adopts) and the cache of empty segments. */
#include "internal.h"

/* Frees what the calling thread's heap holds empty and, with force, purges it with
 * MADV_DONTNEED and unmaps the empty segments. Returns true if memory was released. */
bool vm_purge_collect(bool force) {
  vm_heap_t *heap = vm_heap_tls;
  bool released = false;
  if (heap != &vm_heap_empty) {
    vm_segment_adopt_all(heap);
    vm_heap_collect_pages(heap, force);
    released = vm_segment_purge_free_slices(heap, force) > 0;
  }
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
