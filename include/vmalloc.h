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

/* Writes a human-readable report of the heap to the file descriptor fd. Returns 0. */
int vmalloc_stats_print(int fd);

#ifdef __cplusplus
}
#endif
#endif
