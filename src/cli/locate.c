/* Finding files: libvmalloc.so for the preload, and the program to run. */
#include "cli.h"

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static const char library_name[] = "libvmalloc.so";

/* Makes `candidate` absolute into path (LD_PRELOAD is read again by every program the
 * command starts, from wherever it has moved to); -1 when there is no such file. */
static int resolve(const char *candidate, char *path, size_t cap) {
  char real[PATH_MAX];
  struct stat st;
  if (!realpath(candidate, real) || stat(real, &st))
    return -1;
  if (!S_ISREG(st.st_mode)) {
    errno = S_ISDIR(st.st_mode) ? EISDIR : EINVAL;
    return -1;
  }
  if ((size_t)snprintf(path, cap, "%s", real) >= cap) {
    errno = ENAMETOOLONG;
    return -1;
  }
  return 0;
}

/* ld.so splits LD_PRELOAD at spaces and colons, so a path holding one cannot be given. */
static int fits_preload(const char *path) {
  if (!strpbrk(path, ": \t")) /* ld.so also splits at tabs */
    return 1;
  fprintf(stderr, "vmalloc: %s: LD_PRELOAD cannot name a file whose path holds a space or a "
                  "colon; give --lib a path without them\n", path);
  return 0;
}

int vm_cli_find_library(const char *given, char *path, size_t cap) {
  const char *origin = "--lib";
  if (!given || !*given) {
    given = getenv("VMALLOC_LIB");
    origin = "VMALLOC_LIB";
  }
  if (given && *given) {
    /* Named explicitly: never fall back to another copy. */
    if (resolve(given, path, cap)) {
      fprintf(stderr, "vmalloc: no library at %s (from %s): %s\n", given, origin,
              strerror(errno));
      return -1;
    }
    return fits_preload(path) ? 0 : -1;
  }
  /* Beside this program in the build tree; in ../lib once installed as PREFIX/bin/vmalloc. */
  char self[PATH_MAX];
  ssize_t n = readlink("/proc/self/exe", self, sizeof self - 1);
  if (n <= 0) {
    fprintf(stderr, "vmalloc: cannot find libvmalloc.so: /proc/self/exe is unreadable (%s); "
                    "give --lib PATH or set VMALLOC_LIB\n", strerror(errno));
    return -1;
  }
  self[n] = 0;
  char *slash = strrchr(self, '/');
  if (slash)
    *slash = 0;
  const char *const layouts[] = {"%s/%s", "%s/../lib/%s"};
  for (size_t i = 0; i < sizeof layouts / sizeof layouts[0]; i++) {
    char candidate[PATH_MAX + sizeof library_name + 8];
    snprintf(candidate, sizeof candidate, layouts[i], self, library_name);
    if (resolve(candidate, path, cap) == 0)
      return fits_preload(path) ? 0 : -1;
  }
  fprintf(stderr, "vmalloc: cannot find libvmalloc.so: it is neither in %s (beside this "
                  "program) nor in %s/../lib; give --lib PATH or set VMALLOC_LIB\n", self, self);
  return -1;
}

/* Whether path is a file this process may execute; sets errno as execve would. */
static int executable(const char *path) {
  struct stat st;
  if (stat(path, &st))
    return 0;
  if (S_ISDIR(st.st_mode)) {
    errno = EISDIR;
    return 0;
  }
  return access(path, X_OK) == 0;
}

int vm_cli_check_program(const char *name) {
  if (strchr(name, '/')) {
    if (executable(name))
      return 0;
    fprintf(stderr, "vmalloc: cannot run %s: %s\n", name, strerror(errno));
    return errno == ENOENT ? VM_EXIT_NOT_FOUND : VM_EXIT_CANNOT_EXECUTE;
  }
  /* The search execvp makes, with its default when PATH is unset. */
  const char *search = getenv("PATH");
  if (!search)
    search = "/bin:/usr/bin";
  for (const char *dir = search;; dir++) {
    size_t len = strcspn(dir, ":");
    char path[PATH_MAX];
    if (len == 0) /* an empty entry is the working folder */
      snprintf(path, sizeof path, "%s", name);
    else
      snprintf(path, sizeof path, "%.*s/%s", (int)len, dir, name);
    if (executable(path))
      return 0;
    dir += len;
    if (!*dir)
      break;
  }
  fprintf(stderr, "vmalloc: %s: command not found\n", name);
  return VM_EXIT_NOT_FOUND;
}
