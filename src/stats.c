/* Statistics: one snapshot of the heap, taken from the census of segments and pages
 * (segment.c), the kernel-call counters (os.c) and, while VMALLOC_STATS is on, the exact
 * call counters (counters.c); shown through vmalloc_stats_get, vmalloc_memory and glibc's
 * calls. The report that prints it is report.c. Nothing here allocates. */
#include "internal.h"

#include <errno.h>
#include <malloc.h>
#include <stdio.h>
#include <string.h>

#include "vmalloc.h"

_Static_assert(VM_CLASS_COUNT <= VMALLOC_STATS_MAX_CLASSES, "vmalloc.h has room for every class");

#define STAT(name) atomic_load_explicit(&vm_os_stats.name, memory_order_relaxed)

/* Resident bytes of the allocator's own bookkeeping: segment headers with their page
 * descriptors (the first pages of slice 0), the heaps, and the registry's touched pages. */
static size_t metadata_bytes(const vm_census_t *c, size_t heaps_made) {
  size_t page = vm_os_page_size();
  size_t headers = c->segments * vm_align_up(sizeof(vm_segment_t), page);
  size_t heaps = heaps_made * vm_align_up(sizeof(vm_heap_t), 64);
  uintptr_t first = (uintptr_t)vm_registry_map & ~(uintptr_t)(page - 1);
  uintptr_t end = vm_align_up((uintptr_t)vm_registry_map + sizeof vm_registry_map, page);
  return headers + heaps + vm_os_resident_bytes((void *)first, end - first);
}

/* The figures of vmalloc_memory_t, from a census taken with residency measured. */
static void memory_figures(const vm_census_t *c, vmalloc_memory_t *out) {
  size_t reserved = STAT(reserved_bytes);
  out->reserved = reserved;
  out->committed = reserved > c->clean_bytes ? reserved - c->clean_bytes : 0;
  out->resident = c->resident_bytes;
  out->lazy = c->lazy_bytes;
  out->live = c->live_bytes + c->huge_bytes;
  out->purged = STAT(purged_bytes);
}

/* Copies one counting bucket into a class's counted fields. */
static void take_counts(vmalloc_class_stats_t *out, const vm_bucket_counts_t *counts) {
  out->live_blocks = counts->live;
  out->peak_blocks = counts->peak;
  out->allocs = counts->allocs;
  out->frees = counts->frees;
}

/* A size class as its pages show it now; the live count is the pages' until counted. */
static void class_from_census(vmalloc_class_stats_t *out, const vm_census_t *c, unsigned i) {
  size_t page_bytes = (size_t)vm_class_slices[i] * VM_SLICE_SIZE;
  out->block_size = vm_class_size[i];
  out->pages = c->class_pages[i];
  out->capacity_blocks = out->pages * (page_bytes / out->block_size);
  out->used_blocks = c->class_live_blocks[i];
  out->live_blocks = out->used_blocks;
  out->free_bytes = out->pages * page_bytes - out->used_blocks * out->block_size;
}

/* The whole snapshot: the census (measured with mincore) in *census, the public figures
 * in *out (whose size field is left alone). */
void vm_stats_take(vmalloc_stats_t *out, vm_census_t *census) {
  vm_init_process(); /* the options say whether counting is on, even before any malloc */
  size_t size = out->size;
  memset(out, 0, sizeof *out);
  out->size = size;
  vm_segment_census(census, true);
  const vm_census_t *c = census;
  vm_counters_t counters;
  vm_counters_get(&counters);
  out->counting = counters.enabled;

  out->class_count = VM_CLASS_COUNT;
  size_t class_free = 0;
  for (unsigned i = 1; i <= VM_CLASS_COUNT; i++) {
    class_from_census(&out->classes[i - 1], c, i);
    class_free += out->classes[i - 1].free_bytes;
  }
  out->large.pages = out->large.capacity_blocks = c->class_pages[0];
  out->large.used_blocks = out->large.live_blocks = c->class_live_blocks[0];
  out->large.free_bytes = c->free_bytes_in_pages > class_free ? c->free_bytes_in_pages - class_free : 0;
  out->huge.pages = out->huge.capacity_blocks = c->huge_blocks;
  out->huge.used_blocks = out->huge.live_blocks = c->huge_blocks;
  out->live_bytes = c->live_bytes + c->huge_bytes;
  if (counters.enabled) {
    for (unsigned i = 1; i <= VM_CLASS_COUNT; i++)
      take_counts(&out->classes[i - 1], &counters.buckets[i]);
    take_counts(&out->large, &counters.buckets[VM_COUNTER_LARGE]);
    take_counts(&out->huge, &counters.buckets[VM_COUNTER_HUGE]);
    out->requested_bytes = counters.requested_bytes;
    out->allocated_bytes = counters.allocated_bytes;
    out->live_bytes = counters.live_bytes;
    out->peak_bytes = counters.peak_bytes;
    out->cross_thread_frees = counters.cross_thread_frees;
  }
  out->threads_seen = counters.threads_seen;

  vmalloc_memory_t memory;
  memory_figures(c, &memory);
  out->reserved = memory.reserved;
  out->committed = memory.committed;
  out->resident = memory.resident;
  out->lazy = memory.lazy;
  out->purged = memory.purged;
  vm_heap_count(&out->heaps_in_use, &out->heaps_made, &out->heaps_parked);
  out->metadata = metadata_bytes(c, out->heaps_made);
  out->segment_bytes = c->segment_bytes;
  out->segments = c->segments;
  out->cached_segments = c->cached_segments;
  out->abandoned_segments = c->abandoned_segments;
  out->mmap_calls = STAT(mmap_calls);
  out->munmap_calls = STAT(munmap_calls);
  out->madvise_calls = STAT(madvise_calls);
  out->mremap_calls = STAT(mremap_calls);
  out->mprotect_calls = STAT(mprotect_calls);
  out->pagemap_reads = STAT(pagemap_reads);
  out->purge_delay_ms = (size_t)vm_purge_delay_ms();
  out->purge_reused_bytes = vm_purge_reused_soon_bytes();
}

/* vmalloc_stats_get(). The first layout ends with heaps_made; a caller built with it gets
 * only its fields. */
int vm_stats_get(vmalloc_stats_t *out) {
  if (out == NULL || out->size < offsetof(vmalloc_stats_t, heaps_made) + sizeof(size_t)) {
    errno = EINVAL;
    return -1;
  }
  vmalloc_stats_t whole = {.size = out->size};
  vm_census_t census;
  vm_stats_take(&whole, &census);
  memcpy(out, &whole, out->size < sizeof whole ? out->size : sizeof whole);
  return 0;
}

/* vmalloc_memory(): the census with residency measured, in the public layout. */
int vm_memory_get(vmalloc_memory_t *out) {
  if (out == NULL || out->size < sizeof(vmalloc_memory_t)) {
    errno = EINVAL;
    return -1;
  }
  vm_census_t c;
  vm_segment_census(&c, true);
  memory_figures(&c, out);
  return 0;
}

/* glibc's fields, with vmalloc's meanings (the report's figures of the same names):
 *   arena     bytes of normal segments mapped     hblks/hblkhd  huge mappings, count/bytes
 *   uordblks  bytes in blocks in use (segments)   fordblks      arena - uordblks
 *   ordblks   pages in use                        keepcost      bytes malloc_trim can unmap
 *   usmblks   the peak of live bytes, while VMALLOC_STATS counts (else 0, as glibc) */
struct mallinfo2 vm_mallinfo2(void) {
  vm_census_t c;
  vm_segment_census(&c, false);
  struct mallinfo2 info;
  memset(&info, 0, sizeof info);
  info.arena = c.segment_bytes;
  info.ordblks = c.pages;
  info.hblks = c.huge_blocks;
  info.hblkhd = c.huge_bytes;
  info.uordblks = c.live_bytes;
  info.fordblks = c.segment_bytes - c.live_bytes;
  info.keepcost = c.cached_segments * VM_SEGMENT_SIZE + c.cached_huge_bytes;
  if (vm_counting()) {
    vm_counters_t counters;
    vm_counters_get(&counters);
    info.usmblks = counters.peak_bytes;
  }
  return info;
}

struct mallinfo vm_mallinfo(void) {
  struct mallinfo2 m = vm_mallinfo2();
  struct mallinfo info;
  memset(&info, 0, sizeof info);
  info.arena = (int)m.arena;
  info.ordblks = (int)m.ordblks;
  info.hblks = (int)m.hblks;
  info.hblkhd = (int)m.hblkhd;
  info.usmblks = (int)m.usmblks;
  info.uordblks = (int)m.uordblks;
  info.fordblks = (int)m.fordblks;
  info.keepcost = (int)m.keepcost;
  return info;
}

/* glibc's malloc_stats layout, on stderr. */
void vm_malloc_stats(void) {
  struct mallinfo2 m = vm_mallinfo2();
  char buf[512];
  int n = vm_diag_format(buf, sizeof buf,
                         "Arena 0:\nsystem bytes     = %zu\nin use bytes     = %zu\n"
                         "Total (incl. mmap):\nsystem bytes     = %zu\n"
                         "in use bytes     = %zu\nmax mmap regions = %zu\n"
                         "max mmap bytes   = %zu\n",
                         m.arena, m.uordblks, m.arena + m.hblkhd, m.uordblks + m.hblkhd,
                         m.hblks, m.hblkhd);
  vm_diag_write(2, buf, (size_t)n);
}

/* glibc's malloc_info XML shape. As in glibc, <size> lines and "rest" describe free
 * space: per class in use, its free blocks (capacity - used) and their bytes; "rest" adds
 * the free space of large pages. "current" is the segments mapped, "mmap" the huge
 * blocks. */
int vm_malloc_info(int options, FILE *fp) {
  if (options != 0)
    return EINVAL; /* as glibc does: the error is the return value */
  vmalloc_stats_t s = {.size = sizeof s};
  vm_census_t c;
  vm_stats_take(&s, &c);
  char buf[512];
  fputs("<malloc version=\"1\">\n<heap nr=\"0\">\n<sizes>\n", fp);
  size_t free_blocks = s.large.capacity_blocks - s.large.used_blocks;
  for (unsigned i = 0; i < s.class_count; i++) {
    const vmalloc_class_stats_t *k = &s.classes[i];
    if (k->pages == 0)
      continue;
    free_blocks += k->capacity_blocks - k->used_blocks;
    vm_diag_format(buf, sizeof buf, "  <size from=\"%zu\" to=\"%zu\" total=\"%zu\" count=\"%zu\"/>\n",
                   (size_t)vm_class_size[i] + 1, k->block_size, k->free_bytes,
                   k->capacity_blocks - k->used_blocks);
    fputs(buf, fp);
  }
  vm_diag_format(buf, sizeof buf,
                 "</sizes>\n<total type=\"fast\" count=\"0\" size=\"0\"/>\n"
                 "<total type=\"rest\" count=\"%zu\" size=\"%zu\"/>\n"
                 "<system type=\"current\" size=\"%zu\"/>\n<system type=\"max\" size=\"%zu\"/>\n"
                 "<aspace type=\"total\" size=\"%zu\"/>\n<aspace type=\"mprotect\" size=\"%zu\"/>\n"
                 "</heap>\n",
                 free_blocks, c.free_bytes_in_pages, c.segment_bytes, c.segment_bytes,
                 c.segment_bytes, c.segment_bytes);
  fputs(buf, fp);
  vm_diag_format(buf, sizeof buf,
                 "<total type=\"fast\" count=\"0\" size=\"0\"/>\n"
                 "<total type=\"rest\" count=\"%zu\" size=\"%zu\"/>\n"
                 "<total type=\"mmap\" count=\"%zu\" size=\"%zu\"/>\n"
                 "<system type=\"current\" size=\"%zu\"/>\n<system type=\"max\" size=\"%zu\"/>\n"
                 "<aspace type=\"total\" size=\"%zu\"/>\n<aspace type=\"mprotect\" size=\"%zu\"/>\n"
                 "</malloc>\n",
                 free_blocks, c.free_bytes_in_pages, c.huge_blocks, c.huge_bytes,
                 c.segment_bytes + c.huge_bytes, c.segment_bytes + c.huge_bytes, s.reserved,
                 s.committed);
  fputs(buf, fp);
  return 0;
}
