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

/* ---- the purge delays in force ------------------------------------------------------
 * VMALLOC_PURGE_DELAY_MS and VMALLOC_PURGE_ESCALATE_MS are the shortest delays. Memory
 * the schedule dropped (MADV_DONTNEED) that the program carves again within the delay in
 * force was dropped too early: each of its OS pages faults back in, and the madvise
 * bought nothing. A program whose working set comes and goes a little slower than the
 * delay (a pool of threads that come and go, a compiler between two functions) would
 * pay that over and over. So when such reuse comes to half of what the schedule
 * dropped since the delays last changed, and to at least REUSE_SOON_MIN, both delays
 * double, up to VMALLOC_PURGE_STRETCH times; after CALM_PERIODS delays in force without
 * doubling, they halve, back to the options once the program stops. */
#define REUSE_SOON_MIN ((size_t)1 << 20)
#define CALM_PERIODS 8

static _Atomic(unsigned) stretch; /* the delays in force are the options << stretch */
static _Atomic(int64_t) stretch_changed_ms;
static _Atomic(size_t) dropped_since_change, reused_soon_since_change;
static _Atomic(size_t) reused_soon_total;

int64_t vm_purge_delay_ms(void) {
  return vm_option(VM_OPTION_PURGE_DELAY_MS) << atomic_load_explicit(&stretch, memory_order_relaxed);
}

int64_t vm_purge_escalate_ms(void) {
  return vm_option(VM_OPTION_PURGE_ESCALATE_MS)
         << atomic_load_explicit(&stretch, memory_order_relaxed);
}

size_t vm_purge_reused_soon_bytes(void) {
  return atomic_load_explicit(&reused_soon_total, memory_order_relaxed);
}

/* One step up or down, by whichever thread gets there first. */
static void change_stretch(unsigned from, unsigned to, int64_t now) {
  if (!atomic_compare_exchange_strong(&stretch, &from, to))
    return;
  atomic_store_explicit(&stretch_changed_ms, now, memory_order_relaxed);
  atomic_store_explicit(&dropped_since_change, 0, memory_order_relaxed);
  atomic_store_explicit(&reused_soon_since_change, 0, memory_order_relaxed);
}

void vm_purge_note_dropped(size_t bytes) {
  atomic_fetch_add_explicit(&dropped_since_change, bytes, memory_order_relaxed);
}

void vm_purge_note_reuse(size_t bytes, int64_t dropped_for_ms, int64_t now) {
  if (dropped_for_ms > vm_purge_delay_ms())
    return; /* it stayed unused long enough: dropping it was right */
  atomic_fetch_add_explicit(&reused_soon_total, bytes, memory_order_relaxed);
  if (now - dropped_for_ms < atomic_load_explicit(&stretch_changed_ms, memory_order_relaxed))
    return; /* dropped under the delays before the last change, which it already drove */
  size_t reused =
      atomic_fetch_add_explicit(&reused_soon_since_change, bytes, memory_order_relaxed) + bytes;
  size_t dropped = atomic_load_explicit(&dropped_since_change, memory_order_relaxed);
  unsigned now_stretch = atomic_load_explicit(&stretch, memory_order_relaxed);
  if (reused >= REUSE_SOON_MIN && reused >= dropped / 2 &&
      now_stretch < (unsigned)vm_option(VM_OPTION_PURGE_STRETCH))
    change_stretch(now_stretch, now_stretch + 1, now);
}

void vm_purge_relax(int64_t now) {
  unsigned now_stretch = atomic_load_explicit(&stretch, memory_order_relaxed);
  if (now_stretch != 0 &&
      now - atomic_load_explicit(&stretch_changed_ms, memory_order_relaxed) >=
          CALM_PERIODS * vm_purge_delay_ms())
    change_stretch(now_stretch, now_stretch - 1, now);
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
    long delay = (long)vm_purge_delay_ms();
    long escalate = (long)vm_purge_escalate_ms();
    long period = (delay < escalate ? delay : escalate) / 2;
    period = period < 10 ? 10 : period > 1000 ? 1000 : period;
    struct timespec ts = {period / 1000, (period % 1000) * 1000000L};
    nanosleep(&ts, NULL);
    int64_t now = vm_os_now_ms();
    vm_purge_relax(now);
    vm_heap_release_parked(now, false);
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
