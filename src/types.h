/* Every internal struct, each headed by its invariants and by who may touch what. */
#ifndef VM_TYPES_H
#define VM_TYPES_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#define VM_CLASS_COUNT 63 /* classes 1..63; 0 means "one block per page" */

/* A lock that spins a little, then sleeps on a futex: no allocation, and trivially reset
 * in a fork child (see internal.h). held: 0 free, 1 held, 2 held with sleepers. */
typedef struct {
  atomic_int held;
} vm_lock_t;

typedef struct vm_heap_s vm_heap_t;
typedef struct vm_page_s vm_page_t;
typedef struct vm_segment_s vm_segment_t;

/* A free block. On a page's own free list `next` is encoded (see vm_block_next in
 * internal.h) and `freed` holds the process's freed-block key, which is how free spots a
 * block freed twice; on the atomic remote list `next` is a plain pointer. Every block is
 * at least 16 bytes, so both words fit. */
typedef struct vm_block_s {
  struct vm_block_s *next;
  uintptr_t freed;
} vm_block_t;

/* Flags kept in the low bits of vm_page_t.owner, so that free tests one word: it equals
 * the calling thread's heap exactly when the block may be pushed on the free list. */
#define VM_PAGE_FULL 1u    /* off its class queue; a remote free must notify the owner */
#define VM_PAGE_HUGE 2u    /* the only block of a dedicated mapping */
#define VM_PAGE_CHECKED 4u /* VMALLOC_CHECK >= 2: every free goes through check.c */
#define VM_PAGE_COUNTED 8u /* VMALLOC_STATS: every free is counted (counters.c) */
#define VM_PAGE_FLAGS 15u /* heaps are aligned to 64 bytes, so these bits are free */

/* thread_free, the list other threads free onto, is one word: the first block (a user
 * address, below 2^47), the number of blocks on the list in the top 16 bits, so the
 * owner takes the list whole without walking it, and in the low bit NOTIFY: set while
 * the page is FULL and nobody has yet told the owner that a block came back. The remote
 * freer that clears it notifies. The list's links are encoded as the free list's are. */
#define VM_THREAD_FREE_NOTIFY 1u
#define VM_THREAD_FREE_COUNT_SHIFT 48
#define VM_THREAD_FREE_BLOCK_MASK ((((uintptr_t)1 << 47) - 1) & ~(uintptr_t)VM_THREAD_FREE_NOTIFY)

/* One page: a run of slices serving one size class (or one large block).
 * Invariants, for a page in use:
 *   used = blocks handed out and not yet back on `free` (blocks on thread_free still
 *          count until collected), plus 1 while the page is the current page of its
 *          class (`pinned`) and no bigger than one extension (`pin_held`): so such a
 *          page never reaches 0 on the free fast path, and a malloc/free loop on it
 *          never leaves the fast path;
 *   used - pin_held + |free| = capacity <= reserved; pin_held <= pinned;
 *   blocks [capacity, reserved) have never been handed out and are not on any list
 *          (its tail: from block clean_from on, its memory is known not resident).
 * The owner thread alone writes the descriptor. Its thread_free (in the segment's
 * remote[], see vm_page_thread_free) any thread may push onto (one atomic CAS) and only
 * the owner takes (one atomic exchange). While the page's
 * segment is abandoned, "owner" means whoever holds the segment. Only the head descriptor
 * of a run is meaningful; the others carry head_offset back to it.
 * Two cache lines, and free finds them with a shift. The first holds what any thread
 * freeing a block reads and the owner seldom writes; the second what the owner writes
 * on every malloc and free. In one line, each free by another thread took the line
 * from the owner and the owner's next malloc took it back: a cache miss on both sides
 * of every cross-thread free. */
struct vm_page_s {
  /* read by every free; written when the page is made, marked full or freed */
  _Atomic(uintptr_t) owner;        /* owning heap | VM_PAGE_* flags; 0 while free */
  uint64_t block_magic;            /* 2^64 / block_size + 1, rounded down: the high half
                                      of offset * magic is offset / block_size, and the
                                      low half, below block_limit exactly at the starts
                                      of the carved blocks (see vm_page_set_capacity) */
  uint32_t area_low;               /* the low 32 bits of the page area's address (not
                                      for huge blocks), so (uint32_t)p - area_low is p's
                                      offset */
  uint32_t block_size;             /* huge blocks: see the segment */
  uint16_t reserved;
  uint8_t class_idx;    /* 0: a single large or huge block */
  uint8_t in_use;       /* 1 from page allocation to page free */
  uint8_t slice_count;
  uint8_t zeroed;       /* its memory read as zero when the page was made */
  uint16_t head_offset; /* bytes from this descriptor back to the head of its run's:
                           bytes rather than descriptors save free a shift */
  _Atomic(uint64_t) block_limit; /* capacity * (block_magic * block_size mod 2^64): see
                                    vm_page_is_block_start; raised as blocks are carved,
                                    back to 0 only with no block out */
  /* written by the owner on every malloc and free: nobody else reads them */
  vm_block_t *free __attribute__((aligned(64))); /* the owner's list (LIFO) */
  uint16_t used;
  uint16_t capacity;
  uint8_t pinned;       /* 1 while the current page of its class */
  uint8_t pin_held;     /* 1 while `used` holds the current page's extra count */
  vm_page_t *next;      /* in the owner's class queue */
  vm_page_t *prev;
  uint16_t clean_from;   /* reserved + 1: the slack after the last block is not clean */
  uint16_t carved_peak;  /* the most blocks carved since the purge clock last looked, */
  uint16_t carved_peak_before; /* and in the look before (see vm_heap_purge_pages) */
  /* the page as the purge clock's last look left it, and how many looks in a row found
   * it so: a page nobody allocated from or freed into (see uncarve_free_end) */
  vm_block_t *look_free;
  uint16_t look_used;
  uint8_t idle_looks;
  uint16_t tail_dropped_to; /* the clock dropped the tail's blocks below this, */
  uint32_t tail_dropped_ms; /* at this time (its low 32 bits, never 0; 0: no drop) */
} __attribute__((aligned(64)));
_Static_assert(sizeof(vm_page_t) == 128, "a page descriptor is two cache lines");
#define VM_PAGE_DESCRIPTOR_SHIFT 7

/* The list that other threads free a page's blocks onto (see VM_THREAD_FREE_*), in a
 * cache line of its own: the owner writes its descriptor on every malloc and free, and a
 * remote free that had to take that line from it would slow both threads down. */
typedef struct {
  _Atomic(uintptr_t) thread_free;
  /* while the segment is abandoned: the page's used count, which nobody changes then, so
   * the remote free that brings thread_free's count to it knows it empties the page */
  _Atomic(uint16_t) abandoned_used;
  uint8_t padding[54];
} __attribute__((aligned(64))) vm_remote_list_t;

/* A class queue: pages with (probably) free blocks; the first is the current page. */
typedef struct {
  vm_page_t *first;
  vm_page_t *last;
} vm_page_queue_t;

#define VM_SEGMENT_NORMAL 0
#define VM_SEGMENT_HUGE 1

/* A segment: VM_SEGMENT_SIZE bytes aligned to their size (a huge segment: one mapping,
 * aligned the same way, holding one block). Slice 0 holds this header.
 * Invariants: bit i of free_slices is set iff slice i (i >= 1) belongs to no page;
 *   dirty_slices, lazy_slices are disjoint subsets of free_slices: freed and maybe
 *   resident, and purged with MADV_FREE (resident until the kernel wants the memory);
 *   zero_slices: slices known to read as zero (never touched, or purged with
 *   MADV_DONTNEED), a subset of free_slices minus dirty and lazy; dropped_slices: of
 *   those, the ones the purge schedule (not a trim) dropped;
 *   live_pages = number of pages with in_use = 1; a normal segment with live_pages = 0
 *   belongs to no heap for long (it is cached or unmapped).
 * The owning heap's thread alone touches the pages. The slice masks and times change
 * under `lock`, taken by the owner when it carves or frees a page and by whoever purges
 * (the owner, malloc_trim in any thread, the background thread). Other threads touch
 * only notify_pages (fetch_or) and read owner_heap. While abandoned (owner_heap = NULL),
 * a segment is reached only through the abandoned list, under its lock, and adopted
 * whole. */
struct vm_segment_s {
  size_t size;                      /* bytes mapped */
  uint8_t kind;                     /* VM_SEGMENT_NORMAL or VM_SEGMENT_HUGE */
  uint8_t list;                     /* which list holds it: see segment.c */
  uint8_t huge_fresh;               /* huge: a new mapping, so the block reads as zero */
  uint8_t huge_measured;            /* huge, cached: huge_resident was measured */
  uint16_t live_pages;
  vm_lock_t lock;
  _Atomic(vm_heap_t *) owner_heap;  /* NULL while abandoned */
  _Atomic(uint64_t) notify_pages;   /* bit i: the full page at slice i got a remote free */
  uint64_t free_slices;
  uint64_t dirty_slices;
  uint64_t lazy_slices;
  uint64_t zero_slices;
  uint64_t committed_slices;        /* strict overcommit only: slices made accessible */
  int64_t dirty_since_ms;           /* when the oldest dirty slice was freed */
  int64_t lazy_since_ms;            /* when the oldest lazy slice was purged */
  uint64_t dropped_slices;          /* dropped by the schedule and not carved since, */
  int64_t dropped_ms;               /* the last time the schedule dropped any */
  int64_t cached_since_ms;          /* when it became empty and entered the cache */
  size_t huge_block_offset;         /* huge: where the block starts */
  size_t huge_guard;                /* huge, VMALLOC_CHECK=3: inaccessible bytes at the end */
  size_t huge_requested;            /* huge: the size malloc or realloc last asked for */
  size_t huge_resident;             /* huge, cached: bytes resident, or its size until measured */
  size_t huge_own_from, huge_own_to; /* huge: offsets of pages pagemap showed to be the
                                       process's own; they stay so while mapped */
  vm_segment_t *next;               /* in the owner's list, the abandoned list or cache */
  vm_segment_t *prev;
  vm_segment_t *all_next;           /* every normal segment, for the census and purging */
  vm_segment_t *all_prev;
  vm_page_t pages[64] __attribute__((aligned(64)));
  vm_remote_list_t remote[64];      /* remote[i]: page i's thread_free */
};

#define VM_DIRECT_SLOTS 513 /* sizes 0..8192 in 16-byte steps */

/* A thread's heap. Invariants: direct[(n + 15) / 16] is the first page of the queue of
 * the class serving n, or &vm_page_empty when that queue is empty; pages on a queue are
 * in use, owned by this heap and not FULL; every owned normal segment is on exactly one
 * of segments_avail (some slice free) and segments_full.
 * Only the owner thread touches a heap, except `notified` (any thread sets it) and the
 * pool and census links (under the heap lock). Heaps are never unmapped: a thread that
 * exits returns its heap to a pool, so a stale pointer to one is always safe to write. */
struct vm_heap_s {
  uintptr_t list_secret;  /* copies of the process's secrets (vm_secret), next to the  */
  uintptr_t freed_key;    /* direct table so the fast paths find them in a hot line    */
  vm_page_t *direct[VM_DIRECT_SLOTS];
  vm_page_queue_t queues[VM_CLASS_COUNT + 1];
  /* blocks of other heaps' pages that this thread freed, kept (up to VM_FOREIGN_MAX_*)
   * for its own next mallocs of the class, while they are still in its cache */
  vm_block_t *foreign[VM_CLASS_COUNT + 1];
  uint16_t foreign_count[VM_CLASS_COUNT + 1];
  vm_segment_t *segments_avail;
  vm_segment_t *segments_full;
  _Atomic(int) notified;  /* a hint: some owned segment has notify bits set */
  int64_t purge_next_ms;   /* when the purge clock next looks at this heap's segments */
  uint8_t in_use;
  int64_t parked_ms;       /* in the pool with its segments since then; 0: empty */
  vm_heap_t *pool_next;
  vm_heap_t *all_next;
} __attribute__((aligned(64)));

typedef enum { VM_PURGE_REFUSED, VM_PURGE_LAZY, VM_PURGE_DONE } vm_purge_result_t;

#define VM_STAT_COUNTERS(X)                                                             \
  X(mmap_calls)                                                                         \
  X(munmap_calls)                                                                       \
  X(madvise_calls)                                                                      \
  X(mremap_calls)                                                                       \
  X(mprotect_calls)                                                                     \
  X(pagemap_reads)                                                                      \
  X(reserved_bytes)                                                                     \
  X(purged_bytes)                                                                       \
  X(purge_refused_bytes)

/* Kernel-call counters, updated with relaxed atomics by os.c alone. */
typedef struct {
#define VM_STAT_FIELD(name) _Atomic(size_t) name;
  VM_STAT_COUNTERS(VM_STAT_FIELD)
#undef VM_STAT_FIELD
} vm_os_stats_t;

/* A snapshot of the whole heap, taken by walking every segment (see segment.c). */
typedef struct {
  size_t segments, segment_bytes;       /* normal segments mapped */
  size_t cached_segments;               /* of which empty and kept for reuse */
  size_t abandoned_segments;
  size_t abandoned_full_segments;       /* of which with every block in use */
  size_t huge_blocks, huge_bytes;       /* dedicated mappings */
  size_t cached_huge_bytes;             /* freed huge mappings kept for reuse */
  size_t resident_bytes;                /* of segments and huge mappings, by mincore */
  size_t lazy_bytes;                    /* free, purged with MADV_FREE */
  size_t lazy_resident_bytes;           /* of those, resident (measured) */
  size_t freed_resident_bytes;          /* free, not purged, resident (measured): dirty
                                           slices, cached segments and huge mappings */
  size_t clean_bytes;                   /* free, known to read as zero (never touched or
                                           dropped): address space, not memory */
  size_t live_bytes;                    /* in blocks handed out (by block size) */
  size_t free_bytes_in_pages;           /* carved or uncarved, inside live pages */
  size_t free_slice_bytes;              /* slices of live segments that no page uses */
  size_t pages;
  size_t class_live_blocks[VM_CLASS_COUNT + 1];
  size_t class_pages[VM_CLASS_COUNT + 1];
  size_t class_resident_free[VM_CLASS_COUNT + 1]; /* measured: resident bytes of the
                                                     class's pages past its live blocks */
} vm_census_t;

#endif
