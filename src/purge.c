/* When memory goes back to the kernel, on demand: malloc_trim and vmalloc_collect. (The
 * schedule itself, delayed MADV_FREE escalating to MADV_DONTNEED, is in segment.c; the
 * heaps' slow paths and the optional background thread drive it.) Purging another heap's
 * free slices is safe: every change to a segment's slice masks happens under its lock. */
#include "internal.h"

/* Frees what the calling thread's heap holds empty, and what the segments of exited
 * threads hold empty, and purges free memory everywhere: with force at once and with
 * MADV_DONTNEED, also inside the calling heap's free big blocks, and unmapping the empty
 * segments kept in the cache. Returns true if memory was released. */
bool vm_purge_collect(bool force) {
  vm_heap_t *heap = vm_heap_tls;
  bool released = false;
  vm_heap_release_parked(vm_os_now_ms(), force);
  vm_segment_tidy_abandoned();
  if (heap != &vm_heap_empty) {
    vm_heap_collect_pages(heap, force);
    if (force)
      released = vm_heap_purge_pages(heap, true) > 0;
  }
  released |= vm_segment_purge_everything(force) > 0;
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

/* ---- the optional background thread (VMALLOC_BACKGROUND=1) ------------------------- */

#include <pthread.h>
#include <signal.h>
#include <time.h>

static atomic_bool background_started;

/* Runs the purge schedule over every heap, so a process that went idle shrinks too. */
static void *background_main(void *arg) {
  (void)arg;
  for (;;) {
    long delay = vm_option(VM_OPTION_PURGE_DELAY_MS);
    long escalate = vm_option(VM_OPTION_PURGE_ESCALATE_MS);
    long period = (delay < escalate ? delay : escalate) / 2;
    period = period < 10 ? 10 : period > 1000 ? 1000 : period;
    struct timespec ts = {period / 1000, (period % 1000) * 1000000L};
    nanosleep(&ts, NULL);
    vm_heap_release_parked(vm_os_now_ms(), false);
    vm_segment_purge_everything(false);
  }
  return NULL;
}

/* Starts the background thread once the option asks for it; called from slow paths (so
 * never before a heap exists: creating a thread allocates). */
void vm_purge_background_ensure(void) {
  if (vm_likely(!vm_option(VM_OPTION_BACKGROUND)) ||
      atomic_load_explicit(&background_started, memory_order_relaxed))
    return;
  bool expected = false;
  if (!atomic_compare_exchange_strong(&background_started, &expected, true))
    return;
  pthread_attr_t attr;
  pthread_attr_init(&attr);
  pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
  sigset_t all, old;
  sigfillset(&all); /* the process's signals are not for this thread */
  pthread_sigmask(SIG_SETMASK, &all, &old);
  pthread_t thread;
  if (pthread_create(&thread, &attr, background_main, NULL) == 0)
    pthread_setname_np(thread, "vmalloc-purge");
  pthread_sigmask(SIG_SETMASK, &old, NULL);
  pthread_attr_destroy(&attr);
}

/* A fork child has no background thread: the next slow path starts one. */
void vm_purge_fork_child(void) {
  atomic_store_explicit(&background_started, false, memory_order_relaxed);
}
