/* A program for `vmalloc compare` to measure:
 *
 *     alloc_free MIB [--child] [--fail STATUS] [--abort-under-vmalloc]
 *
 * allocates MIB MiB in 64 KiB blocks, writes them all, holds them 300 ms (so that 10 ms
 * samples see the peak), frees them, waits 200 ms (so the last samples see what is left) and
 * exits. It prints to stdout, which compare must discard, and:
 *   --child   does that work in a forked child, and exits while the child still holds its
 *             memory: the peak is then only seen by sampling the whole process tree, and
 *             the child is a leftover that compare must clear away;
 *   --fail STATUS   writes a line to stderr and exits with STATUS instead;
 *   --abort-under-vmalloc   aborts (SIGABRT) when running on vmalloc, and only then. */
#include <dlfcn.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

enum { BLOCK = 64 << 10 };

static void sleep_ms(long ms) {
  struct timespec t = {ms / 1000, (ms % 1000) * 1000000};
  while (nanosleep(&t, &t))
    ;
}

static char **allocate(long mib, size_t *count) {
  *count = (size_t)mib * ((1 << 20) / BLOCK);
  char **blocks = malloc(*count * sizeof *blocks);
  for (size_t i = 0; blocks && i < *count; i++)
    if ((blocks[i] = malloc(BLOCK)))
      memset(blocks[i], (int)i, BLOCK);
  return blocks;
}

static void release(char **blocks, size_t count) {
  for (size_t i = 0; i < count; i++)
    free(blocks[i]);
  free(blocks);
}

int main(int argc, char **argv) {
  long mib = argc > 1 ? atol(argv[1]) : 50;
  int child = 0;
  for (int i = 2; i < argc; i++) {
    if (!strcmp(argv[i], "--child")) {
      child = 1;
    } else if (!strcmp(argv[i], "--fail") && i + 1 < argc) {
      fprintf(stderr, "alloc_free: failing on purpose with status %s\n", argv[i + 1]);
      return atoi(argv[i + 1]);
    } else if (!strcmp(argv[i], "--abort-under-vmalloc")) {
      if (dlsym(RTLD_DEFAULT, "vmalloc_version")) {
        fprintf(stderr, "alloc_free: aborting on purpose under vmalloc\n");
        abort();
      }
    }
  }
  printf("alloc_free: allocating %ld MiB\n", mib);
  fflush(stdout);
  if (child) {
    int ready[2];
    if (pipe(ready))
      return 1;
    pid_t pid = fork();
    if (pid == 0) {
      size_t count;
      char **blocks = allocate(mib, &count);
      if (write(ready[1], "x", 1) != 1)
        return 1;
      sleep_ms(5000); /* compare kills it long before; this is in case it does not */
      release(blocks, count);
      return 0;
    }
    char byte;
    if (pid < 0 || read(ready[0], &byte, 1) != 1)
      return 1;
    sleep_ms(300);
    return 0; /* without waiting: the child is left behind */
  }
  size_t count;
  char **blocks = allocate(mib, &count);
  if (!blocks)
    return 1;
  sleep_ms(300);
  release(blocks, count);
  sleep_ms(200);
  printf("alloc_free: done\n");
  return 0;
}
