/* The libc names: the only code with default visibility. Each is a tail call into the
 * module that does the work, plus glibc's __libc_* aliases that some programs call. */
#include "internal.h"

#include <malloc.h>
#include <stdio.h>
#include <stdlib.h>

#include "vmalloc.h"

#define VM_EXPORT __attribute__((visibility("default")))
#define VM_ALIAS(name) __attribute__((alias(#name), copy(name), visibility("default")))

VM_EXPORT void *malloc(size_t n) { return vm_malloc_fast(n); }
VM_EXPORT void free(void *p) { vm_free_fast(p); }
VM_EXPORT void *calloc(size_t count, size_t size) { return vm_calloc(count, size); }
VM_EXPORT void *realloc(void *p, size_t n) { return vm_realloc(p, n); }
VM_EXPORT void *reallocarray(void *p, size_t count, size_t size) {
  return vm_reallocarray(p, count, size);
}
VM_EXPORT int posix_memalign(void **out, size_t alignment, size_t n) {
  return vm_posix_memalign(out, alignment, n);
}
VM_EXPORT void *aligned_alloc(size_t alignment, size_t n) {
  return vm_aligned_alloc(alignment, n);
}
VM_EXPORT void *memalign(size_t alignment, size_t n) { return vm_memalign(alignment, n); }
VM_EXPORT void *valloc(size_t n) { return vm_valloc(n); }
VM_EXPORT void *pvalloc(size_t n) { return vm_pvalloc(n); }
VM_EXPORT size_t malloc_usable_size(void *p) { return vm_usable_size(p); }

/* C23 sized deallocation (glibc 2.39 and later declare them). */
VM_EXPORT void free_sized(void *p, size_t n);
VM_EXPORT void free_aligned_sized(void *p, size_t alignment, size_t n);
void free_sized(void *p, size_t n) { vm_free_sized(p, n); }
void free_aligned_sized(void *p, size_t alignment, size_t n) {
  vm_free_aligned_sized(p, alignment, n);
}

VM_EXPORT int malloc_trim(size_t pad) { return vm_purge_trim(pad); }
VM_EXPORT struct mallinfo2 mallinfo2(void) { return vm_mallinfo2(); }
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wdeprecated-declarations"
VM_EXPORT struct mallinfo mallinfo(void) { return vm_mallinfo(); }
#pragma GCC diagnostic pop
VM_EXPORT void malloc_stats(void) { vm_malloc_stats(); }
VM_EXPORT int malloc_info(int options, FILE *fp) { return vm_malloc_info(options, fp); }

VM_EXPORT int mallopt(int param, int value) { return vm_mallopt(param, value); }

/* glibc's internal names, called by some programs and by libc's own debugging hooks. */
void *__libc_malloc(size_t n) VM_ALIAS(malloc);
void __libc_free(void *p) VM_ALIAS(free);
void *__libc_calloc(size_t count, size_t size) VM_ALIAS(calloc);
void *__libc_realloc(void *p, size_t n) VM_ALIAS(realloc);
void *__libc_memalign(size_t alignment, size_t n) VM_ALIAS(memalign);
void *__libc_valloc(size_t n) VM_ALIAS(valloc);
void *__libc_pvalloc(size_t n) VM_ALIAS(pvalloc);
int __posix_memalign(void **out, size_t alignment, size_t n) VM_ALIAS(posix_memalign);

/* vmalloc's own API (vmalloc.h). */
VM_EXPORT const char *vmalloc_version(void) { return VM_VERSION; }
VM_EXPORT void vmalloc_collect(bool force) { vm_purge_collect(force); }
VM_EXPORT int vmalloc_stats_print(int fd) { return vm_stats_print(fd); }
VM_EXPORT int vmalloc_memory(vmalloc_memory_t *out) { return vm_memory_get(out); }
VM_EXPORT int vmalloc_stats_get(vmalloc_stats_t *out) { return vm_stats_get(out); }
