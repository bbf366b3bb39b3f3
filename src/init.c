/* Process start-up, fork and exit. Init is lazy: the first allocation may come from the
 * dynamic loader, a constructor or libc itself, so nothing here allocates before the
 * first heap exists. Early init (page size, options, the thread-exit key) needs no heap;
 * late init (atfork handlers, the exit report) runs once a heap is in place, because
 * pthread_atfork and atexit may allocate. */
#include "internal.h"

#include <pthread.h>
#include <sched.h>
#include <stdlib.h>
#include <linux/futex.h>
#include <sys/auxv.h>
#include <sys/syscall.h>
#include <unistd.h>

extern char **environ;

enum { INIT_NONE, INIT_RUNNING, INIT_DONE };
static atomic_int early_state;
static atomic_bool late_done;

/* Critical sections are short, so a waiter spins first. It then sleeps rather than
 * yields: with more threads than CPUs, a holder that was preempted gets the CPU back
 * sooner from sleepers than from threads that keep yielding it to one another. */
void vm_lock_slow(vm_lock_t *lock) {
  for (int spin = 0; spin < 100; spin++) {
    int seen = atomic_load_explicit(&lock->held, memory_order_relaxed);
    if (seen == 0) {
      if (atomic_compare_exchange_weak_explicit(&lock->held, &seen, 1, memory_order_acquire,
                                                memory_order_relaxed))
        return;
    } else if (seen == 2) {
      break; /* others sleep already: spinning would only delay joining them */
    }
    __builtin_ia32_pause();
  }
  /* from here on the lock is taken as "held with sleepers", since this thread may have
   * been one: the unlock that follows wakes the next */
  while (atomic_exchange_explicit(&lock->held, 2, memory_order_acquire) != 0)
    syscall(SYS_futex, &lock->held, FUTEX_WAIT_PRIVATE, 2, NULL, NULL, 0);
}

void vm_lock_wake(vm_lock_t *lock) {
  syscall(SYS_futex, &lock->held, FUTEX_WAKE_PRIVATE, 1, NULL, NULL, 0);
}

bool vm_init_done(void) {
  return atomic_load_explicit(&early_state, memory_order_acquire) == INIT_DONE;
}

void vm_init_process(void) {
  if (vm_likely(vm_init_done()))
    return;
  int expected = INIT_NONE;
  if (atomic_compare_exchange_strong(&early_state, &expected, INIT_RUNNING)) {
    vm_options_init(environ, getauxval(AT_SECURE) != 0);
    vm_os_init(vm_option(VM_OPTION_THP) != 0);
    vm_sizeclass_init();
    vm_heap_secrets_init();
    vm_heap_process_init();
    atomic_store_explicit(&early_state, INIT_DONE, memory_order_release);
    return;
  }
  while (!vm_init_done()) /* another thread is in early init, which cannot block */
    sched_yield();
}

/* Fork: every allocator lock is taken before fork and released on both sides, so the
 * child of a threaded parent finds them free. The fast paths take no lock; heaps of the
 * parent's other threads stay as they were in the child, unused. */
static void before_fork(void) {
  vm_heap_lock_all();
  vm_segment_lock_all();
  vm_check_lock_all();
}
static void after_fork_parent(void) {
  vm_check_unlock_all();
  vm_segment_unlock_all(false);
  vm_heap_unlock_all(false);
}
static void after_fork_child(void) {
  vm_check_unlock_all();
  vm_segment_unlock_all(true);
  vm_heap_unlock_all(true);
  vm_purge_fork_child();
}

/* Runs once, from the first thread that got a heap. */
void vm_init_late(void) {
  bool expected = false;
  if (!atomic_compare_exchange_strong(&late_done, &expected, true))
    return;
  pthread_atfork(before_fork, after_fork_parent, after_fork_child);
  if (vm_option(VM_OPTION_STATS)) /* the report (VMALLOC_STATS, VMALLOC_STATS_FILE) */
    atexit(vm_stats_at_exit);
  if (vm_option(VM_OPTION_VERBOSE))
    vm_options_print(2);
}
