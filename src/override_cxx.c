/* C++'s operator new and delete, as the other allocators that replace malloc replace them:
 * otherwise each new and delete is a call into the C++ runtime, which calls malloc or free.
 *
 * A module of its own, so that in libvmalloc.a its object is pulled only into programs
 * that call operator new or delete, which link a C++ runtime. Every definition is weak: a
 * program that defines some of them itself links, statically too, and keeps its own. As
 * C++ says, each form but the four basic ones (new and delete, plain and aligned) calls one
 * of them through its symbol, so a program that replaced only those gets them for every
 * form. The std::nothrow forms stay the runtime's: they call these and catch. */
#include "internal.h"

#include <dlfcn.h>
#include <stdlib.h>

#define VM_CXX(mangled) __asm__(mangled) __attribute__((weak, visibility("default")))

/* ---- when there is no memory ------------------------------------------------------
 * operator new then calls the program's new-handler until one makes room, and without one
 * throws std::bad_alloc: the runtime's std::get_new_handler and std::__throw_bad_alloc
 * (libstdc++ and libc++ both export them under these names). A throw unwinds through these
 * C frames by their unwind tables (-funwind-tables). In the archive this object goes only
 * into C++ programs, which link their runtime; the shared library goes into C programs
 * too, so there the references are weak, bound at start-up when the program links a C++
 * runtime. */
typedef void (*new_handler_t)(void);
typedef new_handler_t (*get_new_handler_t)(void);
typedef void (*throw_bad_alloc_t)(void);
#ifdef VM_STATIC_ARCHIVE
#define VM_RUNTIME_REFERENCE
#else
#define VM_RUNTIME_REFERENCE __attribute__((weak))
#endif
extern new_handler_t cxx_get_new_handler(void) __asm__("_ZSt15get_new_handlerv")
    VM_RUNTIME_REFERENCE;
extern void cxx_throw_bad_alloc(void) __asm__("_ZSt17__throw_bad_allocv")
    VM_RUNTIME_REFERENCE __attribute__((noreturn));

void *cxx_new(size_t n) VM_CXX("_Znwm");
void *cxx_new_aligned(size_t n, size_t alignment) VM_CXX("_ZnwmSt11align_val_t");

#ifndef VM_STATIC_ARCHIVE
/* A C program that loads a C++ runtime later, with a C++ plugin (into the plugin's own
 * scope, or linked into the plugin), has none bound. Its new fails through the runtime's
 * own operator new instead, found from the object that called vmalloc's: dladdr names that
 * object, and dlsym looks in it and what it loaded. That new calls malloc (vmalloc's) again,
 * then the handler, and throws in the runtime's own terms. NULL if none is found. */
static void *runtime_new(size_t n, size_t alignment, const void *caller) {
  Dl_info info;
  if (dladdr(caller, &info) == 0 || info.dli_fname == NULL)
    return NULL;
  /* the main program has no name here: its handle is dlopen(NULL) */
  void *object = dlopen(info.dli_fname[0] != '\0' ? info.dli_fname : NULL,
                        RTLD_LAZY | RTLD_NOLOAD);
  if (object == NULL)
    return NULL;
  void *own_new = dlsym(object, alignment == 0 ? "_Znwm" : "_ZnwmSt11align_val_t");
  dlclose(object); /* whoever loaded it keeps it loaded */
  if (own_new == NULL || own_new == (void *)cxx_new || own_new == (void *)cxx_new_aligned)
    return NULL;
  if (alignment == 0)
    return ((void *(*)(size_t))own_new)(n);
  return ((void *(*)(size_t, size_t))own_new)(n, alignment);
}
#endif

/* Never returns NULL. `alignment` 0: plain new; `caller`: where new was called from. */
static VM_NOINLINE void *new_failed(size_t n, size_t alignment, const void *caller) {
  get_new_handler_t get_new_handler = cxx_get_new_handler;
  throw_bad_alloc_t throw_bad_alloc = cxx_throw_bad_alloc;
#ifndef VM_STATIC_ARCHIVE
  if (get_new_handler == NULL || throw_bad_alloc == NULL) {
    void *p = runtime_new(n, alignment, caller);
    if (p != NULL)
      return p;
  }
#else
  (void)caller;
#endif
  /* an alignment that is not a power of two fails at once, as in libstdc++ */
  bool can_succeed = alignment == 0 || vm_is_pow2(alignment);
  for (;;) {
    new_handler_t handler = can_succeed && get_new_handler != NULL ? get_new_handler() : NULL;
    if (handler == NULL) {
      if (throw_bad_alloc != NULL)
        throw_bad_alloc();
      vm_diag_warn("vmalloc: out of memory in operator new (%zu bytes), and no C++ runtime "
                   "found to throw std::bad_alloc\n", n);
      abort();
    }
    handler();
    void *p = alignment == 0 ? vm_malloc(n) : vm_aligned_alloc(alignment, n);
    if (p != NULL)
      return p;
  }
}

static VM_NOINLINE void *new_slow(size_t n, const void *caller) {
  void *p = vm_alloc_slow(n, 0);
  return vm_likely(p != NULL) ? p : new_failed(n, 0, caller);
}

/* ---- the basic forms --------------------------------------------------------------- */

void *cxx_new(size_t n) {
  void *p = vm_heap_direct_pop(vm_heap_tls, n);
  return vm_likely(p != NULL) ? p : new_slow(n, __builtin_return_address(0));
}

void *cxx_new_aligned(size_t n, size_t alignment) {
  void *p = vm_aligned_alloc(alignment, n);
  return vm_likely(p != NULL) ? p : new_failed(n, alignment, __builtin_return_address(0));
}

/* a block knows its page, so neither delete needs more than free does */
void cxx_delete(void *p) VM_CXX("_ZdlPv");
void cxx_delete(void *p) { vm_free_fast(p); }

void cxx_delete_aligned(void *p, size_t alignment) VM_CXX("_ZdlPvSt11align_val_t");
void cxx_delete_aligned(void *p, size_t alignment) {
  (void)alignment;
  vm_free_fast(p);
}

/* ---- the forms that call them (weak, so never inlined: a call through the symbol) ---- */

void *cxx_new_array(size_t n) VM_CXX("_Znam");
void *cxx_new_array(size_t n) { return cxx_new(n); }

void *cxx_new_array_aligned(size_t n, size_t alignment) VM_CXX("_ZnamSt11align_val_t");
void *cxx_new_array_aligned(size_t n, size_t alignment) {
  return cxx_new_aligned(n, alignment);
}

void cxx_delete_sized(void *p, size_t n) VM_CXX("_ZdlPvm");
void cxx_delete_sized(void *p, size_t n) {
  (void)n;
  cxx_delete(p);
}

void cxx_delete_sized_aligned(void *p, size_t n, size_t alignment)
    VM_CXX("_ZdlPvmSt11align_val_t");
void cxx_delete_sized_aligned(void *p, size_t n, size_t alignment) {
  (void)n;
  cxx_delete_aligned(p, alignment);
}

void cxx_delete_array(void *p) VM_CXX("_ZdaPv");
void cxx_delete_array(void *p) { cxx_delete(p); }

void cxx_delete_array_sized(void *p, size_t n) VM_CXX("_ZdaPvm");
void cxx_delete_array_sized(void *p, size_t n) {
  (void)n;
  cxx_delete_array(p);
}

void cxx_delete_array_aligned(void *p, size_t alignment) VM_CXX("_ZdaPvSt11align_val_t");
void cxx_delete_array_aligned(void *p, size_t alignment) { cxx_delete_aligned(p, alignment); }

void cxx_delete_array_sized_aligned(void *p, size_t n, size_t alignment)
    VM_CXX("_ZdaPvmSt11align_val_t");
void cxx_delete_array_sized_aligned(void *p, size_t n, size_t alignment) {
  (void)n;
  cxx_delete_array_aligned(p, alignment);
}
