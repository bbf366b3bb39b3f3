/* The segment registry: one byte per segment-aligned address of the user address space,
 * set while a segment of ours starts there. It answers "is this pointer ours?" in one
 * load for any pointer value, so free can reject foreign pointers before reading them.
 * Only the bytes that cover our segments are ever written, so only their pages become
 * resident (see VM_REGISTRY_ENTRIES). */
#include "internal.h"

_Atomic uint8_t vm_registry_map[VM_REGISTRY_ENTRIES];

static uintptr_t index_of(const vm_segment_t *segment) {
  return (uintptr_t)segment >> VM_SEGMENT_SHIFT;
}

/* A segment's address is its own until it is removed, so its byte has one writer. */
void vm_registry_add(vm_segment_t *segment) {
  uintptr_t index = index_of(segment);
  vm_assert(1, index < VM_REGISTRY_ENTRIES);
  atomic_store_explicit(&vm_registry_map[index], 1, memory_order_release);
}

void vm_registry_remove(vm_segment_t *segment) {
  atomic_store_explicit(&vm_registry_map[index_of(segment)], 0, memory_order_release);
}
