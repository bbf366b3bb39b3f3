/* Shared by the unit tests: cmocka and the allocator's internals. The unit tests link the
 * debug archive (VM_DEBUG=3, no libc names), so cmocka keeps the system malloc and the
 * tests call vmalloc through its vm_ functions. */
#ifndef VM_UNIT_H
#define VM_UNIT_H
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "internal.h"

/* xorshift64: deterministic randomness for the tests */
static inline uint64_t unit_rand(uint64_t *state) {
  uint64_t x = *state;
  x ^= x << 13;
  x ^= x >> 7;
  x ^= x << 17;
  return *state = x;
}
#endif
