/* The other malloc libraries vmalloc is compared with, found where Debian installs them.
 * Shared by the vmalloc command and bench/runner.c, so both compare with the same peers. */
#ifndef VM_CLI_PEERS_H
#define VM_CLI_PEERS_H

#include <stddef.h>

/* A peer allocator: its name in tables and the file names its library goes by, the
 * soname first. */
typedef struct {
  const char *name;
  const char *files[3];
} vm_peer_t;

enum { VM_PEER_COUNT = 3 };
extern const vm_peer_t vm_peers[VM_PEER_COUNT];

/* Writes the first readable copy of a peer's library to `path` and returns 1; returns 0
 * when the peer is not installed. */
int vm_peer_locate(const vm_peer_t *peer, char *path, size_t cap);

/* Whether `name` is a peer's name. */
int vm_peer_is_name(const char *name);

#endif
