/*
 * A preload library that sends the heap functions to glibc's own allocator.
 *
 * A program linked with another allocator (Debian's redis-server is linked
 * with jemalloc) would otherwise run its "glibc" benchmark on that allocator:
 * preloading this shim puts glibc's ptmalloc back in front of it. Programs
 * that use the C library's malloc need no shim and do not get one.
 */
#include <dlfcn.h>
#include <errno.h>
#include <malloc.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

extern void *__libc_malloc(size_t);
extern void *__libc_calloc(size_t, size_t);
extern void *__libc_realloc(void *, size_t);
extern void *__libc_memalign(size_t, size_t);
extern void *__libc_valloc(size_t);
extern void *__libc_pvalloc(size_t);
extern void __libc_free(void *);

#define EXPORT __attribute__((visibility("default")))

EXPORT void *malloc(size_t n) { return __libc_malloc(n); }
EXPORT void *calloc(size_t n, size_t m) { return __libc_calloc(n, m); }
EXPORT void *realloc(void *p, size_t n) { return __libc_realloc(p, n); }
EXPORT void free(void *p) { __libc_free(p); }
EXPORT void *memalign(size_t a, size_t n) { return __libc_memalign(a, n); }
EXPORT void *aligned_alloc(size_t a, size_t n) { return __libc_memalign(a, n); }
EXPORT void *valloc(size_t n) { return __libc_valloc(n); }
EXPORT void *pvalloc(size_t n) { return __libc_pvalloc(n); }

EXPORT int posix_memalign(void **out, size_t a, size_t n)
{
    if (a < sizeof(void *) || (a & (a - 1)))
        return EINVAL;
    void *p = __libc_memalign(a, n);
    if (!p)
        return ENOMEM;
    *out = p;
    return 0;
}

/* glibc's malloc_usable_size, looked up in libc itself: a plain reference
 * would bind to the first definition in the process, the other allocator's. */
EXPORT size_t malloc_usable_size(void *p)
{
    static size_t (*glibc_usable)(void *);
    if (!glibc_usable) {
        void *libc = dlopen("libc.so.6", RTLD_LAZY | RTLD_NOLOAD);
        if (libc)
            glibc_usable = (size_t (*)(void *))dlsym(libc, "malloc_usable_size");
        if (!glibc_usable)
            return 0;
    }
    return glibc_usable(p);
}
