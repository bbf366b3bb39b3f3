/* The resident memory of a process tree, read from /proc: a program and everything it
 * started, as `vmalloc compare` samples it. */
#ifndef VM_CLI_PROCTREE_H
#define VM_CLI_PROCTREE_H

#include <sys/types.h>

typedef struct {
  long rss_kb;   /* summed over the tree's processes: a page two of them share counts twice */
  int processes; /* how many there were */
  /* The leader has begun to exit (or is gone): its memory is being torn down, so the
   * sample no longer shows what the program held. */
  int leader_exiting;
} vm_tree_sample_t;

/* Samples every descendant of `root`, root itself left out; `leader` is the descendant whose
 * exit ends the measurement. Returns 0, or -1 when /proc cannot be read. */
int vm_proctree_sample(pid_t root, pid_t leader, vm_tree_sample_t *sample);

#endif
