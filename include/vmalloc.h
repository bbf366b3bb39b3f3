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

/* Writes a human-readable report of the heap to the file descriptor fd. Returns 0. */
int vmalloc_stats_print(int fd);

#ifdef __cplusplus
}
#endif
#endif
