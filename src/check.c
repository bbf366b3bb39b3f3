/* The opt-in checking tiers. VMALLOC_CHECK=1 (the default) lives in the fast paths: the
 * freed-block key and safe-linked free lists. The heavier tiers cost too much for the
 * fast paths, so they take them out of play instead: with VMALLOC_CHECK >= 2 every heap's
 * direct table stays empty (every malloc takes the slow path) and every page's owner word
 * carries VM_PAGE_CHECKED (every free takes the generic path), and both call in here.
 *   2: each block carries its requested size (in its last word) and a canary right after
 *      the requested bytes, checked on free and realloc; freed class blocks are filled
 *      with junk (their first 4 KiB), checked when they are handed out again (a write
 *      after free).
 *   3: also freed blocks wait in a quarantine before reuse, blocks of a fresh page are
 *      handed out in random order, and huge blocks end in an inaccessible guard page
 *      (segment.c). */
#include "internal.h"

#include <string.h>

#define JUNK 0xdf
/* Junk fills and checks cover the start of a block: writes after free land there most
 * (object headers, list links), and a 128 KiB block costs no more than a 4 KiB one. */
#define JUNK_SPAN 4096
#define CANARY_SALT ((uintptr_t)0x5ca1ab1e0ddba11ull)
#define QUARANTINE_BLOCKS 1024
#define QUARANTINE_BYTES ((size_t)32 << 20)

static uintptr_t canary_for(const void *p) {
  return vm_secret.list_secret ^ CANARY_SALT ^ (uintptr_t)p;
}

/* The size word's encoding; its own involution, and never the freed key (in a 16-byte
 * block the size word is the word that holds the key once the block is freed). */
static uintptr_t size_code(uintptr_t n) { return n ^ ~vm_secret.freed_key; }

static uintptr_t *size_word(void *p, size_t block_size) {
  return (uintptr_t *)((uint8_t *)p + block_size - sizeof(uintptr_t));
}

/* The first byte of [from, to) that is not junk, or NULL. */
static const uint8_t *first_non_junk(const uint8_t *from, const uint8_t *to) {
  for (const uint8_t *b = from; b < to; b++)
    if (*b != JUNK)
      return b;
  return NULL;
}

/* Fills the never-used blocks a page just carved with junk, so that every block on a
 * free list is junk past its two link words. */
static size_t junk_end(size_t block_size) {
  return block_size < JUNK_SPAN ? block_size : JUNK_SPAN;
}

/* The bytes at the start of a free class block that must survive while it is free: its
 * link words, and under the junk checks the junk after them. */
size_t vm_check_free_span(size_t block_size) {
  return vm_check_level() >= 2 ? junk_end(block_size) : sizeof(vm_block_t);
}

void vm_check_junk_fresh(uint8_t *first, size_t count, size_t block_size) {
  for (size_t i = 0; i < count; i++)
    memset(first + i * block_size + sizeof(vm_block_t), JUNK,
           junk_end(block_size) - sizeof(vm_block_t));
}

/* A raw block of block_size bytes, at least n + VM_CHECK_OVERHEAD, becomes a checked block
 * of n bytes. A class block must still be all junk: else something wrote to it while it
 * was free. */
void *vm_check_on_malloc(void *p, size_t n, size_t block_size, bool class_block) {
  if (class_block) {
    size_t end = junk_end(block_size);
    if (end == block_size)
      end -= sizeof(uintptr_t); /* the size word of the last owner may sit there */
    const uint8_t *bad = first_non_junk((uint8_t *)p + sizeof(vm_block_t), (uint8_t *)p + end);
    if (bad != NULL)
      vm_diag_misuse("write after free at %p (offset %zu of a %zu-byte block) in malloc()",
                     (void *)bad, (size_t)(bad - (uint8_t *)p), block_size);
  }
  *size_word(p, block_size) = size_code(n);
  uintptr_t canary = canary_for(p);
  memcpy((uint8_t *)p + n, &canary, sizeof canary);
  return p;
}

/* The size a checked block was asked for, or SIZE_MAX if its size word is overwritten. */
size_t vm_check_requested(void *p, size_t block_size) {
  size_t n = (size_t)size_code(*size_word(p, block_size));
  return n <= block_size - VM_CHECK_OVERHEAD ? n : SIZE_MAX;
}

/* Before a checked block goes back (or is resized): its size word and canary must be
 * intact. A class block is then filled with junk. Returns false after a report. */
bool vm_check_on_free(void *p, size_t block_size, bool class_block, const char *where) {
  size_t n = vm_check_requested(p, block_size);
  uintptr_t canary;
  if (n != SIZE_MAX)
    memcpy(&canary, (uint8_t *)p + n, sizeof canary);
  if (n == SIZE_MAX || canary != canary_for(p)) {
    vm_diag_misuse("heap overflow past the end of %p (%zu-byte block) detected in %s", p,
                   block_size, where);
    return false;
  }
  if (class_block)
    memset((uint8_t *)p + sizeof(vm_block_t), JUNK, junk_end(block_size) - sizeof(vm_block_t));
  return true;
}

/* ---- tier 3 ------------------------------------------------------------------------ */

static vm_lock_t quarantine_lock;
static void *quarantine[QUARANTINE_BLOCKS];
static size_t quarantine_size[QUARANTINE_BLOCKS];
static size_t quarantine_head, quarantine_count, quarantine_bytes;

/* Fork: the quarantine's lock is a leaf (nothing else is taken under it), taken last
 * before fork and released on both sides, as every allocator lock is (see init.c). */
void vm_check_lock_all(void) { vm_lock(&quarantine_lock); }
void vm_check_unlock_all(void) { vm_unlock(&quarantine_lock); }

/* Puts a freed block in quarantine. Returns the blocks that must now really be freed,
 * linked through their first word (plain pointers): the oldest ones, as many as make
 * room, or p itself when it is too big to wait. */
vm_block_t *vm_check_quarantine(void *p, size_t bytes) {
  vm_block_t *release = NULL;
  if (bytes > QUARANTINE_BYTES / 4) {
    release = p;
    release->next = NULL;
    return release;
  }
  vm_lock(&quarantine_lock);
  while (quarantine_count == QUARANTINE_BLOCKS || quarantine_bytes + bytes > QUARANTINE_BYTES) {
    size_t oldest = (quarantine_head + QUARANTINE_BLOCKS - quarantine_count) % QUARANTINE_BLOCKS;
    vm_block_t *evicted = quarantine[oldest];
    evicted->next = release;
    release = evicted;
    quarantine_bytes -= quarantine_size[oldest];
    quarantine_count--;
  }
  quarantine[quarantine_head] = p;
  quarantine_size[quarantine_head] = bytes;
  quarantine_head = (quarantine_head + 1) % QUARANTINE_BLOCKS;
  quarantine_count++;
  quarantine_bytes += bytes;
  vm_unlock(&quarantine_lock);
  return release;
}

/* Links count fresh blocks in a random order (tier 3), so that heap layouts are hard to
 * predict; returns the new list head, with `tail_next` after the last. */
vm_block_t *vm_check_shuffled_list(uint8_t *first, size_t count, size_t block_size,
                                   vm_block_t *tail_next, uintptr_t secret) {
  static _Atomic(uint64_t) seed;
  uint64_t x = atomic_fetch_add_explicit(&seed, 0x9e3779b97f4a7c15u, memory_order_relaxed) ^
               vm_secret.list_secret ^ (uintptr_t)first;
  uint16_t order[EXTEND_MAX_BLOCKS];
  for (size_t i = 0; i < count; i++)
    order[i] = (uint16_t)i;
  for (size_t i = count; i > 1; i--) {
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    size_t j = x % i;
    uint16_t t = order[i - 1];
    order[i - 1] = order[j];
    order[j] = t;
  }
  vm_block_t *next = tail_next;
  for (size_t i = 0; i < count; i++) {
    vm_block_t *block = (vm_block_t *)(first + (size_t)order[i] * block_size);
    vm_block_set_next(block, next, secret);
    next = block;
  }
  return next;
}
