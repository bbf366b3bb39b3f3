/* Prints which malloc this process runs on, and what `vmalloc run` set up for it:
 *
 *     which_malloc [STATUS]
 *
 * malloc_from=   the file that defines the malloc in use (libvmalloc.so under vmalloc)
 * vmalloc=       vmalloc_version() when vmalloc is loaded, else "none"
 * marker=        "loaded" when libclimarker.so (a stand-in for an existing preload) is
 * LD_PRELOAD=, VMALLOC_STATS=   as the environment has them ("unset" when they are not)
 *
 * then exits with STATUS (default 0), so that the test sees it passed through. */
#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>

static const char *env_or_unset(const char *name) {
  const char *value = getenv(name);
  return value ? value : "unset";
}

int main(int argc, char **argv) {
  Dl_info info;
  void *malloc_in_use = dlsym(RTLD_DEFAULT, "malloc");
  const char *(*version)(void) = (const char *(*)(void))dlsym(RTLD_DEFAULT, "vmalloc_version");
  printf("malloc_from=%s\n",
         malloc_in_use && dladdr(malloc_in_use, &info) && info.dli_fname ? info.dli_fname : "?");
  printf("vmalloc=%s\n", version ? version() : "none");
  printf("marker=%s\n", dlsym(RTLD_DEFAULT, "vm_cli_test_marker") ? "loaded" : "absent");
  printf("LD_PRELOAD=%s\n", env_or_unset("LD_PRELOAD"));
  printf("VMALLOC_STATS=%s\n", env_or_unset("VMALLOC_STATS"));
  return argc > 1 ? atoi(argv[1]) : 0;
}
