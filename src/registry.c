/* The segment registry: one bit per segment-aligned address of the user address space,
 * set while a segment of ours starts there. It answers "is this pointer ours?" in one
 * load for any pointer value, so free can reject foreign pointers before reading them.
 * 2^47 / 4 MiB bits = 4 MiB of zero-initialised data; only the words that cover our
 * segments are ever written, so only their pages become resident. */
#include "internal.h"

#define REGISTRY_WORDS (((uintptr_t)1 << (VM_REGISTRY_ADDR_BITS - VM_SEGMENT_SHIFT)) / 64)

_Atomic uint64_t vm_registry_bits[REGISTRY_WORDS];

static uintptr_t index_of(const vm_segment_t *segment) {
  return (uintptr_t)segment >> VM_SEGMENT_SHIFT;
}

void vm_registry_add(vm_segment_t *segment) {
  uintptr_t index = index_of(segment);
  vm_assert(1, index / 64 < REGISTRY_WORDS);
  atomic_fetch_or_explicit(&vm_registry_bits[index / 64], (uint64_t)1 << (index % 64),
                           memory_order_release);
}

void vm_registry_remove(vm_segment_t *segment) {
  uintptr_t index = index_of(segment);
  atomic_fetch_and_explicit(&vm_registry_bits[index / 64], ~((uint64_t)1 << (index % 64)),
                            memory_order_release);
}
