/* Statistics: the census of segments and pages (segment.c) and the kernel-call counters
 * (os.c), shown through glibc's calls and vmalloc's own report. */
#include "internal.h"

#include <errno.h>
#include <malloc.h>
#include <stdio.h>
#include <string.h>

#include "vmalloc.h"

/* vmalloc_memory(): the census with residency measured, in the public layout. */
int vm_memory_get(vmalloc_memory_t *out) {
  if (out == NULL || out->size < sizeof(vmalloc_memory_t)) {
    errno = EINVAL;
    return -1;
  }
  vm_census_t c;
  vm_segment_census(&c, true);
  size_t reserved = atomic_load_explicit(&vm_os_stats.reserved_bytes, memory_order_relaxed);
  out->reserved = reserved;
  out->committed = reserved > c.clean_bytes ? reserved - c.clean_bytes : 0;
  out->resident = c.resident_bytes;
  out->lazy = c.lazy_bytes;
  out->live = c.live_bytes + c.huge_bytes;
  out->purged = atomic_load_explicit(&vm_os_stats.purged_bytes, memory_order_relaxed);
  return 0;
}

/* glibc's fields, with vmalloc's meanings:
 *   arena     bytes of normal segments mapped     hblks/hblkhd  huge mappings, count/bytes
 *   uordblks  bytes in blocks in use (segments)   fordblks      arena - uordblks
 *   ordblks   pages in use                        keepcost      bytes malloc_trim can unmap */
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
  info.keepcost = c.cached_segments * VM_SEGMENT_SIZE;
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

/* glibc's malloc_info XML shape: one heap, a <size> line per class in use. */
int vm_malloc_info(int options, FILE *fp) {
  if (options != 0)
    return EINVAL; /* as glibc does: the error is the return value */
  vm_census_t c;
  vm_segment_census(&c, false);
  char buf[256];
  fputs("<malloc version=\"1\">\n<heap nr=\"0\">\n<sizes>\n", fp);
  for (unsigned i = 1; i <= VM_CLASS_COUNT; i++) {
    if (c.class_pages[i] == 0)
      continue;
    vm_diag_format(buf, sizeof buf, "  <size from=\"%u\" to=\"%u\" total=\"%zu\" count=\"%zu\"/>\n",
                   vm_class_size[i - 1] + 1, vm_class_size[i],
                   c.class_live_blocks[i] * vm_class_size[i], c.class_live_blocks[i]);
    fputs(buf, fp);
  }
  vm_diag_format(buf, sizeof buf,
                 "</sizes>\n<total type=\"rest\" count=\"%zu\" size=\"%zu\"/>\n"
                 "<system type=\"current\" size=\"%zu\"/>\n<system type=\"max\" size=\"%zu\"/>\n"
                 "<aspace type=\"total\" size=\"%zu\"/>\n</heap>\n",
                 c.pages, c.free_bytes_in_pages, c.segment_bytes, c.segment_bytes,
                 c.segment_bytes);
  fputs(buf, fp);
  vm_diag_format(buf, sizeof buf,
                 "<total type=\"mmap\" count=\"%zu\" size=\"%zu\"/>\n"
                 "<system type=\"current\" size=\"%zu\"/>\n<system type=\"max\" size=\"%zu\"/>\n"
                 "<aspace type=\"total\" size=\"%zu\"/>\n</malloc>\n",
                 c.huge_blocks, c.huge_bytes, c.segment_bytes + c.huge_bytes,
                 c.segment_bytes + c.huge_bytes, c.segment_bytes + c.huge_bytes);
  fputs(buf, fp);
  return 0;
}

/* vmalloc's own report: totals, classes in use and kernel calls. */
int vm_stats_print(int fd) {
  vm_census_t c;
  vm_segment_census(&c, false);
  size_t heaps_live, heaps_made;
  vm_heap_count(&heaps_live, &heaps_made);
  char buf[512];
  int n = vm_diag_format(
      buf, sizeof buf,
      "vmalloc heap report\n"
      "  segments      %zu (%zu bytes; %zu cached empty, %zu abandoned)\n"
      "  huge blocks   %zu (%zu bytes)\n"
      "  live bytes    %zu in %zu pages (%zu free in those pages)\n"
      "  free slices   %zu bytes (%zu purged lazily, %zu clean)\n"
      "  heaps         %zu in use, %zu made\n",
      c.segments, c.segment_bytes, c.cached_segments, c.abandoned_segments, c.huge_blocks,
      c.huge_bytes, c.live_bytes, c.pages, c.free_bytes_in_pages, c.free_slice_bytes,
      c.lazy_bytes, c.clean_bytes, heaps_live, heaps_made);
  vm_diag_write(fd, buf, (size_t)n);
  for (unsigned i = 1; i <= VM_CLASS_COUNT; i++) {
    if (c.class_pages[i] == 0)
      continue;
    n = vm_diag_format(buf, sizeof buf, "  class %u: %u-byte blocks, %zu live in %zu pages\n",
                       i, vm_class_size[i], c.class_live_blocks[i], c.class_pages[i]);
    vm_diag_write(fd, buf, (size_t)n);
  }
#define VM_STAT_LINE(name)                                                              \
  n = vm_diag_format(buf, sizeof buf, "  %s %zu\n", #name,                              \
                     atomic_load_explicit(&vm_os_stats.name, memory_order_relaxed));    \
  vm_diag_write(fd, buf, (size_t)n);
  VM_STAT_COUNTERS(VM_STAT_LINE)
#undef VM_STAT_LINE
  return 0;
}

void vm_stats_at_exit(void) { vm_stats_print(2); }
