/* The OS layer: the only code that calls mmap, munmap, mremap, madvise and mincore.
 * Failure is a return value (NULL or false); nothing here aborts or allocates, and
 * errno is left as it was: free, realloc and the rest must not leak the kernel's
 * errors into the program's errno. */
#include "internal.h"

#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/auxv.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

vm_os_stats_t vm_os_stats;
static size_t page_size = 4096;
/* Where vm_os_reserve_aligned tries first: below the last aligned mapping, or at the top
 * of the last one unmapped. */
static _Atomic(uintptr_t) aligned_hint;
/* MADV_FREE needs Linux 4.5; after one EINVAL we use MADV_DONTNEED for good. */
static atomic_bool madv_free_unsupported;
/* vm.overcommit_memory = 2: every writable private byte mapped is charged against the
 * commit limit, so segments are reserved inaccessible and committed as they are used. */
static bool strict_commit;
static bool transparent_huge_pages;

#define STAT_ADD(name, n) atomic_fetch_add_explicit(&vm_os_stats.name, (n), memory_order_relaxed)
#define STAT_SUB(name, n) atomic_fetch_sub_explicit(&vm_os_stats.name, (n), memory_order_relaxed)

static void restore_errno(const int *saved) { errno = *saved; }
/* Opens a function that calls the kernel: errno is restored on every way out. */
#define KEEP_ERRNO int saved_errno __attribute__((cleanup(restore_errno), unused)) = errno

/* open, pread and close without glibc's wrappers, which are cancellation points: malloc
 * and calloc must not be, and a thread cancelled inside one would leak the block and the
 * descriptor. */
static int open_read_only(const char *path) {
  return (int)syscall(SYS_openat, AT_FDCWD, path, O_RDONLY | O_CLOEXEC);
}
static ssize_t read_at(int fd, void *buf, size_t bytes, off_t offset) {
  return (ssize_t)syscall(SYS_pread64, fd, buf, bytes, offset);
}
static void close_fd(int fd) { syscall(SYS_close, fd); }

/* Reads a small decimal number from a /proc file without stdio; -1 if it can't. */
static long read_proc_number(const char *path) {
  KEEP_ERRNO;
  int fd = open_read_only(path);
  if (fd < 0)
    return -1;
  char buf[32];
  ssize_t n = read_at(fd, buf, sizeof buf - 1, 0);
  close_fd(fd);
  if (n <= 0 || buf[0] < '0' || buf[0] > '9')
    return -1;
  long value = 0;
  for (ssize_t i = 0; i < n && buf[i] >= '0' && buf[i] <= '9'; i++)
    value = value * 10 + (buf[i] - '0');
  return value;
}

/* Reads the page size from the auxiliary vector (it is not always 4 KiB) and the
 * kernel's overcommit policy. */
void vm_os_init(bool huge_pages) {
  unsigned long aux = getauxval(AT_PAGESZ);
  if (aux >= 4096 && vm_is_pow2(aux))
    page_size = aux;
  strict_commit = read_proc_number("/proc/sys/vm/overcommit_memory") == 2;
  transparent_huge_pages = huge_pages;
}

bool vm_os_strict_commit(void) { return strict_commit; }

/* Milliseconds of a coarse monotonic clock: cheap enough for every slow path. */
int64_t vm_os_now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC_COARSE, &ts);
  return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

size_t vm_os_page_size(void) { return page_size; }

/* Maps address space: readable and writable, or under strict overcommit (when `reserve`
 * asks for it) inaccessible and uncharged until vm_os_commit. With `at`, exactly there if
 * that range is free (else NULL, or, on a kernel older than 4.17 that does not know
 * MAP_FIXED_NOREPLACE, somewhere else, which the caller checks). */
static void *map_anonymous(void *at, size_t size, bool reserve) {
  KEEP_ERRNO;
  STAT_ADD(mmap_calls, 1);
  bool inaccessible = reserve && strict_commit;
#ifdef MAP_FIXED_NOREPLACE
  int exactly = at != NULL ? MAP_FIXED_NOREPLACE : 0;
#else
  int exactly = 0; /* old headers: `at` is a hint, which the caller checks */
#endif
  void *p = mmap(at, size, inaccessible ? PROT_NONE : PROT_READ | PROT_WRITE,
                 MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE | exactly, -1, 0);
  if (p == MAP_FAILED)
    return NULL;
  STAT_ADD(reserved_bytes, size);
  return p;
}

static void unmap(void *p, size_t size) {
  KEEP_ERRNO;
  if (size == 0)
    return;
  STAT_ADD(munmap_calls, 1);
  if (munmap(p, size) == 0)
    STAT_SUB(reserved_bytes, size);
}

/* Maps size bytes (a multiple of the page size) of zeroed memory; NULL on failure. */
void *vm_os_map(size_t size) { return map_anonymous(NULL, vm_align_up(size, page_size), false); }

/* Maps size bytes aligned to alignment (a power of two >= the page size). With reserve
 * and strict overcommit, the memory must be committed (vm_os_commit) before use. */
void *vm_os_reserve_aligned(size_t size, size_t alignment, bool reserve) {
  size = vm_align_up(size, page_size);
  /* The kernel hands out addresses top down, so the range just below our last aligned
   * mapping is usually free: one mmap there, instead of a bigger one trimmed at both
   * ends (three system calls, each taking the process's mapping lock for writing). */
  /* When that range is taken, the kernel's own choice below is its highest free gap, so
   * holes left by unmapped segments are filled before the address space grows down. */
  uintptr_t below = atomic_load_explicit(&aligned_hint, memory_order_relaxed);
  if (below > size + alignment) {
    uint8_t *at = (uint8_t *)((below - size) & ~(uintptr_t)(alignment - 1));
    uint8_t *p = map_anonymous(at, size, reserve);
    if (p == at) {
      atomic_store_explicit(&aligned_hint, (uintptr_t)p, memory_order_relaxed);
      return p;
    }
    if (p != NULL) /* a kernel that took the address as a hint only */
      unmap(p, size);
  }
  if (size + alignment < size)
    return NULL;
  uint8_t *raw = map_anonymous(NULL, size + alignment, reserve);
  if (raw == NULL)
    return NULL;
  uint8_t *aligned = (uint8_t *)vm_align_up((uintptr_t)raw, alignment);
  unmap(raw, (size_t)(aligned - raw));
  unmap(aligned + size, (size_t)(raw + size + alignment - (aligned + size)));
  atomic_store_explicit(&aligned_hint, (uintptr_t)aligned, memory_order_relaxed);
  return aligned;
}

/* Unmaps a mapping that vm_os_reserve_aligned made, and offers its range to the next one.
 * Without that, each new mapping would go below the last, and a process that maps and
 * unmaps segments would walk down its address space, page tables (and a sanitizer's
 * shadow memory, which munmap does not give back) following it. */
void vm_os_release_aligned(void *p, size_t size) {
  vm_os_release(p, size);
  uintptr_t end = (uintptr_t)p + vm_align_up(size, page_size);
  if (end > atomic_load_explicit(&aligned_hint, memory_order_relaxed))
    atomic_store_explicit(&aligned_hint, end, memory_order_relaxed);
}

/* Asks for transparent huge pages on a range, when the option is on. */
void vm_os_advise_huge(void *p, size_t size) {
  KEEP_ERRNO;
  if (transparent_huge_pages) {
    STAT_ADD(madvise_calls, 1);
    madvise(p, size, MADV_HUGEPAGE);
  }
}

bool vm_os_huge_pages(void) { return transparent_huge_pages; }

/* Makes reserved memory usable. Only strict overcommit needs a system call: mprotect
 * charges the range against the commit limit, and may fail. */
bool vm_os_commit(void *p, size_t size) {
  KEEP_ERRNO;
  if (!strict_commit)
    return true;
  STAT_ADD(mprotect_calls, 1);
  return mprotect(p, size, PROT_READ | PROT_WRITE) == 0;
}

/* Makes a range inaccessible: a guard page that turns an overrun into a fault. */
bool vm_os_guard(void *p, size_t size) {
  KEEP_ERRNO;
  STAT_ADD(mprotect_calls, 1);
  return mprotect(p, size, PROT_NONE) == 0;
}

/* Makes a guard page usable again. */
bool vm_os_unguard(void *p, size_t size) {
  KEEP_ERRNO;
  STAT_ADD(mprotect_calls, 1);
  return mprotect(p, size, PROT_READ | PROT_WRITE) == 0;
}

/* Gives back memory and, under strict overcommit, its commit charge: mapping the range
 * anew, inaccessible, is what returns the charge (madvise does not). */
bool vm_os_decommit(void *p, size_t size) {
  KEEP_ERRNO;
  if (!strict_commit)
    return vm_os_purge(p, size, true) == VM_PURGE_DONE;
  STAT_ADD(mmap_calls, 1);
  if (mmap(p, size, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE | MAP_FIXED, -1,
           0) == MAP_FAILED)
    return false;
  STAT_ADD(purged_bytes, size);
  return true;
}

void vm_os_release(void *p, size_t size) { unmap(p, vm_align_up(size, page_size)); }

/* Gives the pages' memory back. now=false: MADV_FREE, the kernel takes the pages when it
 * needs them; now=true: MADV_DONTNEED, resident memory falls at once and the pages read
 * back as zeros. VM_PURGE_REFUSED: the kernel said no (locked memory: mlock/mlockall). */
vm_purge_result_t vm_os_purge(void *p, size_t size, bool now) {
  KEEP_ERRNO;
  if (size == 0)
    return VM_PURGE_DONE;
  STAT_ADD(madvise_calls, 1);
  if (!now && !atomic_load_explicit(&madv_free_unsupported, memory_order_relaxed)) {
    if (madvise(p, size, MADV_FREE) == 0) {
      STAT_ADD(purged_bytes, size);
      return VM_PURGE_LAZY;
    }
    if (errno != EINVAL)
      return VM_PURGE_REFUSED;
  }
  if (madvise(p, size, MADV_DONTNEED) != 0) {
    STAT_ADD(purge_refused_bytes, size);
    return VM_PURGE_REFUSED; /* locked pages: EINVAL for both advices */
  }
  if (!now) /* MADV_FREE failed where MADV_DONTNEED works: an old kernel */
    atomic_store_explicit(&madv_free_unsupported, true, memory_order_relaxed);
  STAT_ADD(purged_bytes, size);
  return VM_PURGE_DONE;
}

/* Grows or shrinks a mapping without moving it; false if the neighbours are in the way. */
bool vm_os_resize_in_place(void *p, size_t old_size, size_t new_size) {
  KEEP_ERRNO;
  old_size = vm_align_up(old_size, page_size);
  new_size = vm_align_up(new_size, page_size);
  if (new_size == old_size)
    return true;
  if (new_size < old_size) {
    unmap((uint8_t *)p + new_size, old_size - new_size);
    return true;
  }
  STAT_ADD(mremap_calls, 1);
  if (mremap(p, old_size, new_size, 0) == MAP_FAILED)
    return false;
  STAT_ADD(reserved_bytes, new_size - old_size);
  return true;
}

/* Moves a mapping's pages, without copying them, to a fresh place aligned to alignment.
 * Returns the new address or NULL (the old mapping is then untouched). */
void *vm_os_remap_aligned(void *p, size_t old_size, size_t new_size, size_t alignment) {
  KEEP_ERRNO;
  old_size = vm_align_up(old_size, page_size);
  new_size = vm_align_up(new_size, page_size);
  void *target = vm_os_reserve_aligned(new_size, alignment, false);
  if (target == NULL)
    return NULL;
  STAT_ADD(mremap_calls, 1);
  void *moved = mremap(p, old_size, new_size, MREMAP_MAYMOVE | MREMAP_FIXED, target);
  if (moved == MAP_FAILED) {
    unmap(target, new_size);
    return NULL;
  }
  /* the old range is gone and the target's reservation was replaced */
  STAT_SUB(reserved_bytes, old_size);
  return moved;
}

/* Fills vec[i] with 1 if page i of the `pages` at start holds memory, else 0; false if it
 * cannot tell. */
typedef bool residency_probe_t(uint8_t *start, size_t pages, unsigned char *vec, void *state);

/* mincore: 1 for a page resident now. A page swapped out shows as 0. Pages it cannot report
 * on show as 1: the cautious answer for every caller (clear them by writing, count them
 * as memory). */
static bool probe_mincore(uint8_t *start, size_t pages, unsigned char *vec, void *unused) {
  (void)unused;
  if (mincore(start, pages * page_size, vec) != 0)
    memset(vec, 1, pages);
  for (size_t i = 0; i < pages; i++)
    vec[i] &= 1;
  return true;
}

/* /proc/self/pagemap: a 64-bit entry per page, whose bit 63 says present and bit 62
 * swapped out; a page with neither has never been written or was dropped, and in private
 * anonymous memory reads as zero. Bit 56 says mapped by this process alone: a present
 * page without it is the shared zero page (a page only ever read) or one shared with a
 * parent or child since fork. */
#define PAGEMAP_HELD (3ull << 62)
#define PAGEMAP_EXCLUSIVE (1ull << 56)
#define PAGEMAP_BATCH 512
/* What probe_pagemap says of a page (any non-zero value: it holds memory). */
enum { PAGE_EMPTY, PAGE_OWN, PAGE_SHARED };

static bool probe_pagemap(uint8_t *start, size_t pages, unsigned char *vec, void *fd) {
  uint64_t entries[PAGEMAP_BATCH];
  for (size_t done = 0; done < pages;) {
    size_t chunk = pages - done < PAGEMAP_BATCH ? pages - done : PAGEMAP_BATCH;
    size_t bytes = chunk * sizeof entries[0];
    off_t at = (off_t)(((uintptr_t)start / page_size + done) * sizeof entries[0]);
    STAT_ADD(pagemap_reads, 1);
    if (read_at(*(int *)fd, entries, bytes, at) != (ssize_t)bytes)
      return false;
    for (size_t i = 0; i < chunk; i++)
      vec[done + i] = !(entries[i] & PAGEMAP_HELD)        ? PAGE_EMPTY
                      : (entries[i] & PAGEMAP_EXCLUSIVE) ? PAGE_OWN
                                                         : PAGE_SHARED;
    done += chunk;
  }
  return true;
}

/* Calls visit(start, bytes, held, ctx) for each maximal run of [p, p+size) (p page-aligned,
 * size rounded up to pages) whose pages the probe gave one value, `held`, in address
 * order. False if the probe failed (the runs before it were visited). */
typedef void residency_visit_t(uint8_t *start, size_t bytes, unsigned held, void *ctx);
static bool for_each_residency_run(void *p, size_t size, residency_probe_t *probe,
                                   void *probe_state, residency_visit_t *visit, void *ctx) {
  unsigned char vec[1024];
  uint8_t *base = p;
  size_t pages = vm_align_up(size, page_size) / page_size;
  size_t run_start = 0;
  unsigned run_held = 0;
  for (size_t done = 0; done < pages;) {
    size_t chunk = pages - done < sizeof vec ? pages - done : sizeof vec;
    if (!probe(base + done * page_size, chunk, vec, probe_state))
      return false;
    for (size_t i = 0; i < chunk; i++) {
      size_t page = done + i;
      if (page == run_start) {
        run_held = vec[i];
      } else if (vec[i] != run_held) {
        visit(base + run_start * page_size, (page - run_start) * page_size, run_held, ctx);
        run_start = page;
        run_held = vec[i];
      }
    }
    done += chunk;
  }
  if (pages > run_start)
    visit(base + run_start * page_size, (pages - run_start) * page_size, run_held, ctx);
  return true;
}

static void count_held(uint8_t *start, size_t bytes, unsigned held, void *total) {
  (void)start;
  if (held)
    *(size_t *)total += bytes;
}

/* Bytes of [p, p+size) resident now, measured with mincore. */
size_t vm_os_resident_bytes(void *p, size_t size) {
  KEEP_ERRNO;
  size_t total = 0;
  for_each_residency_run(p, size, probe_mincore, NULL, count_held, &total);
  return total;
}

typedef struct {
  uint8_t *base;
  size_t part;
  size_t *per_part;
  size_t total;
} part_count_t;

static void count_held_by_part(uint8_t *start, size_t bytes, unsigned held, void *arg) {
  part_count_t *count = arg;
  if (!held)
    return;
  count->total += bytes;
  for (size_t at = (size_t)(start - count->base), end = at + bytes; at < end;) {
    size_t part = at / count->part, part_end = (part + 1) * count->part;
    size_t stop = part_end < end ? part_end : end;
    count->per_part[part] += stop - at;
    at = stop;
  }
}

/* vm_os_resident_bytes, also split into parts of `part` bytes from p: per_part[i] gains
 * the resident bytes of [p + i * part, p + (i + 1) * part). */
size_t vm_os_resident_bytes_by_part(void *p, size_t size, size_t part, size_t *per_part) {
  KEEP_ERRNO;
  part_count_t count = {p, part, per_part, 0};
  for_each_residency_run(p, size, probe_mincore, NULL, count_held_by_part, &count);
  return count.total;
}

static bool page_reads_zero(const uint8_t *page) {
  const uint64_t *word = (const uint64_t *)(const void *)page;
  for (size_t i = 0; i < page_size / sizeof *word; i += 8)
    if (word[i] | word[i + 1] | word[i + 2] | word[i + 3] | word[i + 4] | word[i + 5] |
        word[i + 6] | word[i + 7])
      return false;
  return true;
}

/* For a run pagemap saw: a page that holds nothing reads as zero already. A shared page
 * is mostly the zero page, mapped where the program only read: writing it would fault in
 * a page of its own, so it is written only if it does not read as zero. Counts the bytes
 * of the process's own pages in *own. */
static void clear_held_run(uint8_t *start, size_t bytes, unsigned held, void *own) {
  if (held == PAGE_OWN) {
    memset(start, 0, bytes);
    *(size_t *)own += bytes;
  } else if (held == PAGE_SHARED)
    for (uint8_t *page = start; page < start + bytes; page += page_size)
      if (!page_reads_zero(page))
        memset(page, 0, page_size);
}

/* pagemap tells which pages hold memory, and needs no madvise: in a threaded process every
 * MADV_DONTNEED flushes the TLB of every CPU the process runs on. *own: the bytes of the
 * process's own pages among the whole pages. False, having cleared some or none, when
 * pagemap cannot be read or does not show the first page, just written, as held. */
bool vm_os_zero_held(void *p, size_t size, size_t *own) {
  KEEP_ERRNO;
  size_t whole = size & ~(page_size - 1);
  memset((uint8_t *)p + whole, 0, size - whole);
  *own = 0;
  if (whole == 0)
    return true;
  memset(p, 0, page_size);
  int fd = open_read_only("/proc/self/pagemap");
  if (fd < 0)
    return false;
  unsigned char first;
  bool cleared = probe_pagemap(p, 1, &first, &fd) && first &&
                 for_each_residency_run(p, whole, probe_pagemap, &fd, clear_held_run, own);
  close_fd(fd);
  return cleared;
}

/* Without pagemap: every whole page is dropped (MADV_DONTNEED), to read back as zero and
 * cost memory again only where the program writes. mincore could tell the resident pages
 * to keep, but not a page swapped out (old bytes) from one never written. */
void vm_os_zero_dropping(void *p, size_t size) {
  size_t whole = size & ~(page_size - 1);
  if (vm_os_purge(p, whole, true) != VM_PURGE_DONE)
    whole = 0;
  memset((uint8_t *)p + whole, 0, size - whole);
}

/* Zeroes [p, p+size), p page-aligned, of private anonymous memory. Where pagemap can be
 * read, only the pages that hold memory are written: those then cost no page fault when
 * the program writes them again, and the others stay free until written. Returns the
 * bytes of the whole pages that are the process's own (0 when pagemap cannot tell): they
 * stay so until unmapped or dropped, and a later clear may write them without asking. */
size_t vm_os_zero(void *p, size_t size) {
  size_t own;
  if (vm_os_zero_held(p, size, &own))
    return own;
  vm_os_zero_dropping(p, size);
  return 0;
}
