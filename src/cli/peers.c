/* The other malloc libraries vmalloc is compared with, found where Debian installs them. */
#include "peers.h"

#include <stdio.h>
#include <string.h>
#include <unistd.h>

/* The build passes the compiler's multiarch triplet: Debian's library folder. */
#ifndef MULTIARCH
#define MULTIARCH "x86_64-linux-gnu"
#endif

/* Debian's package file names (libjemalloc2, libmimalloc2.0, libtcmalloc-minimal4). */
const vm_peer_t vm_peers[VM_PEER_COUNT] = {
    {"jemalloc", {"libjemalloc.so.2"}},
    {"mimalloc", {"libmimalloc.so.2", "libmimalloc.so.2.0"}},
    {"tcmalloc", {"libtcmalloc_minimal.so.4"}},
};

/* Searched in this order: a local build shadows the distribution's, as with ld.so. */
static const char *const library_dirs[] = {
    "/usr/local/lib", "/usr/lib/" MULTIARCH, "/lib/" MULTIARCH, "/usr/lib64", "/usr/lib",
};

int vm_peer_locate(const vm_peer_t *peer, char *path, size_t cap) {
  for (size_t d = 0; d < sizeof library_dirs / sizeof library_dirs[0]; d++)
    for (size_t f = 0; f < sizeof peer->files / sizeof peer->files[0] && peer->files[f]; f++) {
      snprintf(path, cap, "%s/%s", library_dirs[d], peer->files[f]);
      if (access(path, R_OK) == 0)
        return 1;
    }
  if (cap)
    path[0] = 0;
  return 0;
}

int vm_peer_is_name(const char *name) {
  for (int i = 0; i < VM_PEER_COUNT; i++)
    if (!strcmp(name, vm_peers[i].name))
      return 1;
  return 0;
}
