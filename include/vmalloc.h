/* vmalloc: a drop-in replacement for the C heap.
 *
 * Link with -lvmalloc (or preload libvmalloc.so) and the standard calls (malloc, free,
 * calloc, realloc, the aligned family, malloc_usable_size, malloc_trim, mallinfo2, ...)
 * are vmalloc's. This header adds vmalloc's own calls. */
#ifndef VMALLOC_H
#define VMALLOC_H

#include <stdbool.h>
#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

/* The library's version, "MAJOR.MINOR.PATCH". */
const char *vmalloc_version(void);

/* Gives memory that the calling thread's heap holds free back to the system, and adopts
 * the heaps of threads that have exited. force: also drop resident pages at once
 * (MADV_DONTNEED) and unmap empty segments; otherwise the kernel reclaims lazily. */
void vmalloc_collect(bool force);

/* Where vmalloc's memory is, in bytes. Each figure is a part of the one above it:
 * reserved >= committed >= resident, and lazy is part of resident until the kernel
 * reclaims it. */
typedef struct vmalloc_memory {
  size_t size;      /* set by the caller to sizeof(vmalloc_memory_t): the layout's version */
  size_t reserved;  /* address space mapped: segments, huge blocks, metadata */
  size_t committed; /* of which possibly backed by memory: all but what is known untouched
                       or dropped (under vm.overcommit_memory=2: what is charged) */
  size_t resident;  /* of which in RAM now, measured with mincore */
  size_t lazy;      /* free memory purged with MADV_FREE: the kernel may take it, and
                       until it does it still counts as resident (LazyFree in smaps) */
  size_t live;      /* in blocks handed out and not yet freed */
  size_t purged;    /* bytes purged (MADV_FREE, MADV_DONTNEED or decommit) since start */
} vmalloc_memory_t;

/* Fills *out (whose size field the caller sets). Returns 0, or -1 with errno EINVAL when
 * out is NULL or its size is smaller than this version's first layout. */
int vmalloc_memory(vmalloc_memory_t *out);

/* Writes the heap report (see the README) to the file descriptor fd: as one JSON object
 * when VMALLOC_STATS=json, else as text. Without VMALLOC_STATS it shows what a walk of
 * the heap finds now and says that the counters are off. Returns 0. */
int vmalloc_stats_print(int fd);

/* Room for every size class: vmalloc has 63 today (class_count says how many). */
#define VMALLOC_STATS_MAX_CLASSES 64

/* One size class, or all large or all huge blocks. The figures marked "counted" are
 * kept only while VMALLOC_STATS is on (counting takes every call off the fast paths);
 * without it they are 0 and live_blocks comes from a walk of the pages. */
typedef struct vmalloc_class_stats {
  size_t block_size;      /* bytes per block; 0 for large and huge blocks (sizes vary) */
  size_t live_blocks;     /* handed out and not yet freed */
  size_t peak_blocks;     /* counted: the most live at once */
  size_t allocs;          /* counted: blocks handed out since start */
  size_t frees;           /* counted: blocks freed since start */
  size_t pages;           /* pages serving it now (huge: mappings) */
  size_t capacity_blocks; /* blocks those pages hold (fill = used / capacity) */
  size_t used_blocks;     /* blocks those pages hold taken: live, plus blocks freed by
                             another thread that the owner has not collected yet */
  size_t free_bytes;      /* inside those pages, in no block in use: the class's waste
                             (address space: the untouched part of a page is not in RAM) */
} vmalloc_class_stats_t;

/* The heap's statistics. Versioned like vmalloc_memory_t: fields are only ever appended. */
typedef struct vmalloc_stats {
  size_t size;        /* set by the caller to sizeof(vmalloc_stats_t): the layout's version */
  size_t counting;    /* 1 while VMALLOC_STATS counts calls, else 0 */
  size_t class_count; /* entries of classes[] in use */
  vmalloc_class_stats_t classes[VMALLOC_STATS_MAX_CLASSES]; /* by block size, smallest first */
  vmalloc_class_stats_t large; /* blocks above the largest class, in runs of 64 KiB slices */
  vmalloc_class_stats_t huge;  /* blocks with a mapping of their own */
  size_t requested_bytes;      /* counted: bytes asked for, over every allocation */
  size_t allocated_bytes;      /* counted: bytes handed out for them (block sizes) */
  size_t live_bytes;           /* in blocks in use now (block sizes; huge: mapping) */
  size_t peak_bytes;           /* counted: the most live_bytes at once */
  size_t reserved, committed, resident, lazy, purged; /* as vmalloc_memory_t */
  size_t metadata;             /* of resident: segment headers, heaps, the registry */
  size_t segment_bytes;        /* normal segments mapped (mallinfo2's arena) */
  size_t segments, cached_segments, abandoned_segments;
  size_t mmap_calls, munmap_calls, madvise_calls, mremap_calls, mprotect_calls;
  size_t threads_seen;         /* threads that made a heap */
  size_t cross_thread_frees;   /* counted: blocks freed by a thread other than the owner */
  size_t heaps_in_use, heaps_made;
  /* appended in the second layout */
  size_t pagemap_reads; /* reads of /proc/self/pagemap (calloc of a reused huge block) */
  /* appended in the third layout */
  size_t heaps_parked;  /* of the heaps not in use: exited threads' heaps kept whole, with
                           their pages, for the next thread to start */
  /* appended in the fourth layout */
  size_t purge_delay_ms;     /* the purge delay in force: VMALLOC_PURGE_DELAY_MS, doubled
                                while purged memory is soon reused (VMALLOC_PURGE_STRETCH) */
  size_t purge_reused_bytes; /* memory the purge schedule dropped that was carved again
                                within the delay in force, since start */
} vmalloc_stats_t;

/* Fills *out (whose size field the caller sets). Returns 0, or -1 with errno EINVAL when
 * out is NULL or its size is smaller than this version's first layout. */
int vmalloc_stats_get(vmalloc_stats_t *out);

#ifdef __cplusplus
}
#endif
#endif
