/* `vmalloc run`: the program, on vmalloc. The library goes first in LD_PRELOAD, before
 * whatever was preloaded already, and then the program replaces this process, so its exit
 * status, signals and terminal are its own. */
#include "cli.h"

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* Puts the library at the head of LD_PRELOAD: first, so its malloc is the one every other
 * object binds to; the entries already there stay, in their order. */
static int prepend_preload(const char *library) {
  const char *existing = getenv("LD_PRELOAD");
  if (!existing || !*existing)
    return setenv("LD_PRELOAD", library, 1);
  size_t size = strlen(library) + 1 + strlen(existing) + 1;
  char *list = malloc(size);
  if (!list)
    return -1;
  snprintf(list, size, "%s:%s", library, existing);
  int failed = setenv("LD_PRELOAD", list, 1);
  free(list);
  return failed;
}

int vm_cli_run(const vm_cli_options_t *options) {
  char library[PATH_MAX];
  if (vm_cli_find_library(options->library, library, sizeof library))
    return VM_EXIT_OWN_FAILURE;
  if (prepend_preload(library) ||
      (options->stats && setenv("VMALLOC_STATS", "1", 1))) {
    fprintf(stderr, "vmalloc: cannot set the environment: %s\n", strerror(errno));
    return VM_EXIT_OWN_FAILURE;
  }
  execvp(options->command[0], options->command);
  int error = errno;
  fprintf(stderr, "vmalloc: cannot run %s: %s\n", options->command[0], strerror(error));
  return error == ENOENT ? VM_EXIT_NOT_FOUND : VM_EXIT_CANNOT_EXECUTE;
}
