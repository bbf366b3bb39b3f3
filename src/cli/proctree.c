/* The resident memory of a process tree, read from /proc.
 *
 * The tree is found through /proc/PID/task/TID/children when the kernel has them
 * (CONFIG_PROC_CHILDREN), else by reading every process's parent from /proc/PID/stat. Each
 * member's RSS comes from the same stat line, so one read per process and sample. */
#include "proctree.h"

#include <dirent.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* The kernel's task flag for "in do_exit()" (include/linux/sched.h), shown in field 9 of
 * /proc/PID/stat. From then on the address space is being unmapped and RSS falls to 0. */
#define TASK_FLAG_EXITING 0x4u

typedef struct {
  pid_t pid, parent;
  long rss_pages;
  unsigned flags;
} process_t;

/* The processes read for one sample; kept between samples to spare the allocations. */
static process_t *processes;
static size_t process_count, process_capacity;

/* Appends a process to the sample's list; -1 when out of memory. */
static int remember(const process_t *p) {
  if (process_count == process_capacity) {
    size_t capacity = process_capacity ? 2 * process_capacity : 256;
    process_t *grown = realloc(processes, capacity * sizeof *grown);
    if (!grown)
      return -1;
    processes = grown, process_capacity = capacity;
  }
  processes[process_count++] = *p;
  return 0;
}

/* Reads a file of /proc into buf as a string; returns its length, or -1. */
static ssize_t read_proc_file(const char *path, char *buf, size_t cap) {
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0)
    return -1;
  size_t n = 0;
  ssize_t k;
  while (n + 1 < cap && (k = read(fd, buf + n, cap - 1 - n)) > 0)
    n += (size_t)k;
  close(fd);
  buf[n] = 0;
  return (ssize_t)n;
}

/* Reads a process's parent, flags and RSS; 0, or -1 when it has gone. */
static int read_process(pid_t pid, process_t *p) {
  char path[64], line[1024];
  snprintf(path, sizeof path, "/proc/%d/stat", (int)pid);
  if (read_proc_file(path, line, sizeof line) <= 0)
    return -1;
  /* The command name in parentheses may hold spaces and ')': fields start after the last. */
  const char *after_name = strrchr(line, ')');
  char state;
  int parent;
  if (!after_name || sscanf(after_name + 1,
                            " %c %d %*d %*d %*d %*d %u %*u %*u %*u %*u %*u %*u %*d %*d %*d %*d %*d "
                            "%*d %*u %*u %ld",
                            &state, &parent, &p->flags, &p->rss_pages) != 4)
    return -1;
  p->pid = pid;
  p->parent = parent;
  return 0;
}

/* Whether this kernel lists children in /proc/PID/task/TID/children. */
static int kernel_lists_children(void) {
  static int answer = -1;
  if (answer < 0) {
    char path[64];
    snprintf(path, sizeof path, "/proc/self/task/%d/children", (int)getpid());
    answer = access(path, R_OK) == 0;
  }
  return answer;
}

/* Collects the descendants of root by following the kernel's children lists down. */
static int collect_by_children(pid_t root) {
  /* processes[] doubles as the work queue: entry i's children are appended after it. */
  process_t top = {.pid = root};
  if (remember(&top))
    return -1;
  for (size_t i = 0; i < process_count; i++) {
    char path[64 + sizeof(struct dirent){0}.d_name];
    snprintf(path, sizeof path, "/proc/%d/task", (int)processes[i].pid);
    DIR *tasks = opendir(path);
    if (!tasks)
      continue; /* it has gone meanwhile */
    for (struct dirent *task; (task = readdir(tasks));) {
      if (task->d_name[0] == '.')
        continue;
      char list[4096];
      snprintf(path, sizeof path, "/proc/%d/task/%s/children", (int)processes[i].pid,
               task->d_name);
      if (read_proc_file(path, list, sizeof list) <= 0)
        continue;
      for (char *save = NULL, *word = strtok_r(list, " \n", &save); word;
           word = strtok_r(NULL, " \n", &save)) {
        process_t child;
        if (read_process((pid_t)atoi(word), &child) == 0 && remember(&child)) {
          closedir(tasks);
          return -1;
        }
      }
    }
    closedir(tasks);
  }
  /* Leave root out, as the scan does. */
  memmove(processes, processes + 1, (process_count - 1) * sizeof *processes);
  process_count--;
  return 0;
}

/* Collects the descendants of root from the parent of every process on the machine. */
static int collect_by_scan(pid_t root) {
  DIR *proc = opendir("/proc");
  if (!proc)
    return -1;
  for (struct dirent *entry; (entry = readdir(proc));) {
    process_t p;
    if (entry->d_name[0] >= '1' && entry->d_name[0] <= '9' &&
        read_process((pid_t)atoi(entry->d_name), &p) == 0 && remember(&p)) {
      closedir(proc);
      return -1;
    }
  }
  closedir(proc);
  /* Move the descendants to the front, breadth first: entries before `found` are in the
   * tree, and each is checked in turn for children among the rest. */
  size_t found = 0;
  for (size_t i = 0; i < process_count; i++)
    if (processes[i].parent == root) {
      process_t swap = processes[found];
      processes[found++] = processes[i], processes[i] = swap;
    }
  for (size_t next = 0; next < found; next++)
    for (size_t i = found; i < process_count; i++)
      if (processes[i].parent == processes[next].pid) {
        process_t swap = processes[found];
        processes[found++] = processes[i], processes[i] = swap;
      }
  process_count = found;
  return 0;
}

int vm_proctree_sample(pid_t root, pid_t leader, vm_tree_sample_t *sample) {
  static long page_kb;
  if (!page_kb)
    page_kb = sysconf(_SC_PAGESIZE) / 1024;
  process_count = 0;
  if ((kernel_lists_children() ? collect_by_children(root) : collect_by_scan(root)) < 0)
    return -1;
  *sample = (vm_tree_sample_t){.leader_exiting = 1};
  for (size_t i = 0; i < process_count; i++) {
    const process_t *p = &processes[i];
    int exiting = (p->flags & TASK_FLAG_EXITING) != 0;
    if (p->pid == leader)
      sample->leader_exiting = exiting;
    if (!exiting)
      sample->rss_kb += p->rss_pages * page_kb;
    sample->processes++;
  }
  return 0;
}
