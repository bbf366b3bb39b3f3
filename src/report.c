/* The heap report: printed at exit with VMALLOC_STATS=1 (text) or json, to stderr or
 * VMALLOC_STATS_FILE, and on demand by vmalloc_stats_print. One snapshot (stats.c) feeds
 * both forms, and both walk the same tables of figures below, so a figure is named once.
 * It runs at exit, from any thread and inside malloc_stats-like calls, so it allocates
 * nothing: it formats into a stack buffer, write(2)s, and reads /proc with open/read. */
#include "internal.h"

#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <string.h>
#include <unistd.h>

#include "vmalloc.h"

/* ---- output ------------------------------------------------------------------------ */

#define PIECE_MAX 512 /* the longest piece one emit call writes */

typedef struct {
  int fd;
  size_t len;
  char buf[4096];
} out_t;

/* Writes out what is buffered. */
static void flush(out_t *out) {
  vm_diag_write(out->fd, out->buf, out->len);
  out->len = 0;
}

/* Appends formatted text (vm_diag_format's conversions). */
static void emit(out_t *out, const char *fmt, ...) {
  if (sizeof out->buf - out->len < PIECE_MAX)
    flush(out);
  va_list ap;
  va_start(ap, fmt);
  out->len += (size_t)vm_diag_vformat(out->buf + out->len, PIECE_MAX, fmt, ap);
  va_end(ap);
}

/* Appends text right-aligned in a column `width` wide (up to 32 spaces of padding). */
static void emit_column(out_t *out, size_t width, const char *text) {
  static const char spaces[] = "                                ";
  size_t len = strlen(text);
  size_t pad = len < width ? width - len : 0;
  if (pad > sizeof spaces - 1)
    pad = sizeof spaces - 1;
  emit(out, "%s%s", spaces + (sizeof spaces - 1 - pad), text);
}

/* "512 B", "12.0 KiB", "2.1 MiB": one decimal, rounded. */
static const char *human_bytes(char *buf, size_t size, size_t bytes) {
  static const char *const units[] = {"B", "KiB", "MiB", "GiB", "TiB"};
  unsigned unit = 0;
  while (unit + 1 < sizeof units / sizeof units[0] && bytes >= ((size_t)1024 << (10 * unit)))
    unit++;
  if (unit == 0) {
    vm_diag_format(buf, size, "%zu B", bytes);
  } else {
    size_t tenths = (bytes * 10 + ((size_t)1 << (10 * unit)) / 2) >> (10 * unit);
    vm_diag_format(buf, size, "%zu.%zu %s", tenths / 10, tenths % 10, units[unit]);
  }
  return buf;
}

/* part / whole in thousandths, rounded; 0 when whole is 0. */
static size_t thousandths(size_t part, size_t whole) {
  return whole == 0 ? 0 : (part * 1000 + whole / 2) / whole;
}

/* part / whole as "93.1%". */
static const char *percent(char *buf, size_t size, size_t part, size_t whole) {
  size_t t = thousandths(part, whole);
  vm_diag_format(buf, size, "%zu.%zu%%", t / 10, t % 10);
  return buf;
}

/* part / whole as a JSON number with three decimals: "0.931". */
static const char *fraction(char *buf, size_t size, size_t part, size_t whole) {
  size_t t = thousandths(part, whole);
  vm_diag_format(buf, size, "%zu.%s%zu", t / 1000, t % 1000 < 10 ? "00" : t % 1000 < 100 ? "0" : "",
                 t % 1000);
  return buf;
}

/* ---- the figures, each named once ---------------------------------------------------- */

enum { BYTES = 1, COUNTED = 2 }; /* a figure in bytes; a figure only the counters know */

typedef struct {
  const char *key;   /* the field's name: the JSON key */
  const char *label; /* in the text report */
  size_t offset;     /* in its struct */
  int flags;
  int width;         /* of its column in the text table of classes */
} figure_t;

#define TOTAL(field, label, flags) {#field, label, offsetof(vmalloc_stats_t, field), flags, 0},
static const figure_t totals[] = {
    TOTAL(requested_bytes, "requested", BYTES | COUNTED)
    TOTAL(allocated_bytes, "allocated", BYTES | COUNTED)
    TOTAL(live_bytes, "live", BYTES)
    TOTAL(peak_bytes, "peak live", BYTES | COUNTED)
    TOTAL(reserved, "reserved", BYTES)
    TOTAL(committed, "committed", BYTES)
    TOTAL(resident, "resident (mincore)", BYTES)
    TOTAL(lazy, "lazily freed", BYTES)
    TOTAL(purged, "purged since start", BYTES)
    TOTAL(purge_reused_bytes, "purged, then reused soon", BYTES)
    TOTAL(purge_delay_ms, "purge delay in force (ms)", 0)
    TOTAL(metadata, "metadata", BYTES)
    TOTAL(segment_bytes, "segments mapped", BYTES)
    TOTAL(segments, "segments", 0)
    TOTAL(cached_segments, "cached empty segments", 0)
    TOTAL(abandoned_segments, "abandoned segments", 0)
    TOTAL(heaps_in_use, "heaps in use", 0)
    TOTAL(heaps_made, "heaps made", 0)
    TOTAL(heaps_parked, "heaps parked", 0)
    TOTAL(threads_seen, "threads seen", 0)
    TOTAL(cross_thread_frees, "cross-thread frees", COUNTED)
    TOTAL(mmap_calls, "mmap calls", 0)
    TOTAL(munmap_calls, "munmap calls", 0)
    TOTAL(madvise_calls, "madvise calls", 0)
    TOTAL(mremap_calls, "mremap calls", 0)
    TOTAL(mprotect_calls, "mprotect calls", 0)
    TOTAL(pagemap_reads, "pagemap reads", 0)
};
#undef TOTAL

#define COLUMN(field, label, flags, width)                                              \
  {#field, label, offsetof(vmalloc_class_stats_t, field), flags, width},
static const figure_t columns[] = {
    COLUMN(block_size, "block", 0, 7)
    COLUMN(live_blocks, "live", 0, 10)
    COLUMN(peak_blocks, "peak", COUNTED, 10)
    COLUMN(allocs, "allocs", COUNTED, 11)
    COLUMN(frees, "frees", COUNTED, 11)
    COLUMN(pages, "pages", 0, 6)
    COLUMN(capacity_blocks, "capacity", 0, 10)
    COLUMN(used_blocks, "used", 0, 10)
    COLUMN(free_bytes, "waste", BYTES, 11)
};
#undef COLUMN
#define FILL_WIDTH 7 /* the fill column: used / capacity, after the others */

/* The value of figure f in the struct at base. */
static size_t figure_of(const void *base, const figure_t *f) {
  size_t value;
  memcpy(&value, (const uint8_t *)base + f->offset, sizeof value);
  return value;
}

/* Where the process's resident memory is. The heap's part is measured with mincore;
 * within it, metadata, lazily freed memory, free slices waiting for the purge and live
 * blocks are known, and what remains of the heap's resident bytes is free space inside
 * pages (carved blocks not in use), up to what the pages hold; anything beyond is
 * unattributed. A live block never touched is not resident, so it makes "free inside
 * pages" read low, never the total wrong. */
typedef struct {
  size_t process;        /* Rss of /proc/self/smaps_rollup */
  size_t heap;           /* resident bytes of the heap: segments, huge blocks, metadata */
  size_t live;           /* of heap: in blocks in use */
  size_t free_in_pages;  /* of heap: inside pages, in no block in use */
  size_t lazy;           /* of heap: purged with MADV_FREE, resident until reclaimed */
  size_t awaiting_purge; /* of heap: freed slices younger than the purge delay */
  size_t metadata;       /* of heap: segment headers, heaps, the registry */
  size_t unattributed;   /* of heap: none of the above */
  size_t not_heap;       /* process - heap: the program, libraries, stacks, other maps */
} rss_split_t;

#define SPLIT(field, label) {#field, label, offsetof(rss_split_t, field), BYTES, 0},
static const figure_t rss_lines[] = {
    SPLIT(process, "process RSS")
    SPLIT(heap, "  heap resident")
    SPLIT(live, "    live blocks")
    SPLIT(free_in_pages, "    free inside pages")
    SPLIT(lazy, "    lazily freed (MADV_FREE)")
    SPLIT(awaiting_purge, "    freed, awaiting purge")
    SPLIT(metadata, "    metadata")
    SPLIT(unattributed, "    unattributed")
    SPLIT(not_heap, "  not the heap's")
};
#undef SPLIT

/* The first decimal number after `key` in text, or 0. */
static size_t number_after(const char *text, const char *key) {
  const char *p = strstr(text, key);
  if (p == NULL)
    return 0;
  p += strlen(key);
  while (*p == ' ' || *p == '\t')
    p++;
  size_t value = 0;
  for (; *p >= '0' && *p <= '9'; p++)
    value = value * 10 + (size_t)(*p - '0');
  return value;
}

/* Reads the start of a /proc file into buf, NUL-terminated; false if it can't. */
static bool read_proc(const char *path, char *buf, size_t size) {
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0)
    return false;
  ssize_t n = read(fd, buf, size - 1);
  close(fd);
  buf[n > 0 ? n : 0] = '\0';
  return n > 0;
}

/* The process's resident set in bytes: smaps_rollup's Rss (Linux 4.14 and later), else
 * statm's resident pages. */
static size_t process_rss(void) {
  char buf[1024];
  if (read_proc("/proc/self/smaps_rollup", buf, sizeof buf))
    return number_after(buf, "\nRss:") * 1024;
  if (read_proc("/proc/self/statm", buf, sizeof buf))
    return number_after(buf, " ") * vm_os_page_size();
  return 0;
}

/* Takes up to `want` bytes out of what is left of `budget`. */
static size_t take(size_t *budget, size_t want) {
  size_t got = want < *budget ? want : *budget;
  *budget -= got;
  return got;
}

/* Fills r from the snapshot: the heap's resident bytes handed out part by part. */
static void split_rss(const vmalloc_stats_t *s, const vm_census_t *c, rss_split_t *r) {
  memset(r, 0, sizeof *r);
  r->process = process_rss();
  /* the census measured segments and huge mappings; heaps and the registry lie outside */
  size_t header_bytes = s->segments * vm_align_up(sizeof(vm_segment_t), vm_os_page_size());
  size_t outside = s->metadata > header_bytes ? s->metadata - header_bytes : 0;
  r->heap = c->resident_bytes + outside;
  /* freed memory, as measured: only its resident pages count (a slice may never have
   * been touched whole, and the kernel may have taken lazily freed pages already) */
  size_t budget = r->heap;
  r->metadata = take(&budget, s->metadata);
  r->lazy = take(&budget, c->lazy_resident_bytes);
  r->awaiting_purge = take(&budget, c->freed_resident_bytes);
  r->live = take(&budget, c->live_bytes + c->huge_bytes);
  size_t free_in_pages = 0;
  for (unsigned i = 0; i <= VM_CLASS_COUNT; i++)
    free_in_pages += c->class_resident_free[i];
  r->free_in_pages = take(&budget, free_in_pages);
  r->unattributed = budget;
  r->not_heap = r->process > r->heap ? r->process - r->heap : 0;
}

/* The largest single source of waste, described in `what`. */
typedef struct {
  size_t bytes;
  char what[160];
} waste_t;

/* Keeps (bytes, what) if it is the largest waste seen so far. */
static void consider(waste_t *w, size_t bytes, const char *what) {
  if (bytes > w->bytes) {
    w->bytes = bytes;
    vm_diag_format(w->what, sizeof w->what, "%s", what);
  }
}

/* The candidates, all resident memory as measured: free space inside the pages of each
 * class and of large blocks, lazily freed memory, and freed memory not yet purged (which
 * includes cached segments). (A class's waste column is address space: a page's untouched
 * part is not in RAM, and a big class's pages are mostly untouched.) */
static void largest_waste(const vmalloc_stats_t *s, const vm_census_t *c, const rss_split_t *r,
                          waste_t *w) {
  memset(w, 0, sizeof *w);
  vm_diag_format(w->what, sizeof w->what, "none");
  char what[160];
  for (size_t i = 0; i < s->class_count; i++) {
    vm_diag_format(what, sizeof what, "free inside pages of class %zu (%zu-byte blocks)", i + 1,
                   s->classes[i].block_size);
    consider(w, c->class_resident_free[i + 1], what);
  }
  consider(w, c->class_resident_free[0], "free inside the pages of large blocks");
  consider(w, r->lazy, "lazily freed memory (MADV_FREE: resident until the kernel needs it)");
  consider(w, r->awaiting_purge, "freed memory waiting for the purge delay (VMALLOC_PURGE_DELAY_MS)");
}

/* ---- text -------------------------------------------------------------------------- */

/* A figure as the text shows it: bytes in a readable unit, counts as they are. */
static const char *text_figure(char *buf, size_t size, size_t value, int flags) {
  if (flags & BYTES)
    return human_bytes(buf, size, value);
  vm_diag_format(buf, size, "%zu", value);
  return buf;
}

/* Whether a class is in use, or was: it then has a row. */
static bool shown(const vmalloc_class_stats_t *k) {
  return k->pages != 0 || k->live_blocks != 0 || k->allocs != 0;
}

/* One row of the table of classes; "-" for what the counters would know when off. */
static void text_row(out_t *out, const char *name, const vmalloc_class_stats_t *k, bool counting) {
  char cell[32];
  emit_column(out, 6, name);
  for (size_t i = 0; i < sizeof columns / sizeof columns[0]; i++) {
    const figure_t *f = &columns[i];
    size_t value = figure_of(k, f);
    bool unknown = (f->flags & COUNTED) && !counting;
    bool varies = value == 0 && f->offset == offsetof(vmalloc_class_stats_t, block_size);
    emit_column(out, (size_t)f->width,
                unknown || varies ? "-" : text_figure(cell, sizeof cell, value, f->flags));
  }
  emit_column(out, FILL_WIDTH, percent(cell, sizeof cell, k->used_blocks, k->capacity_blocks));
  emit(out, "\n");
}

#define LINE_WIDTH 42 /* a label and its value, right-aligned */

/* "  label      value  note": one figure on its own line. */
static void text_line(out_t *out, const char *label, const char *value, const char *note) {
  size_t len = strlen(label);
  emit(out, "  %s", label);
  emit_column(out, len < LINE_WIDTH - 12 ? LINE_WIDTH - len : 12, value);
  emit(out, "%s%s\n", note[0] != '\0' ? "  " : "", note);
}

/* The report as text: the table of classes, the totals, the RSS split, the largest waste. */
static void print_text(out_t *out, const vmalloc_stats_t *s, const rss_split_t *r,
                       const waste_t *w) {
  char cell[48], note[96];
  emit(out, "vmalloc heap report, pid %d: counters %s\n", (int)getpid(),
       s->counting ? "on" : "off (VMALLOC_STATS=1 at start-up adds allocs, frees, peaks, "
                            "requested bytes and cross-thread frees)");
  emit_column(out, 6, "class");
  for (size_t i = 0; i < sizeof columns / sizeof columns[0]; i++)
    emit_column(out, (size_t)columns[i].width, columns[i].label);
  emit_column(out, FILL_WIDTH, "fill");
  emit(out, "\n");
  for (size_t i = 0; i < s->class_count; i++) {
    if (!shown(&s->classes[i]))
      continue;
    vm_diag_format(cell, sizeof cell, "%zu", i + 1);
    text_row(out, cell, &s->classes[i], s->counting);
  }
  text_row(out, "large", &s->large, s->counting);
  text_row(out, "huge", &s->huge, s->counting);
  for (size_t i = 0; i < sizeof totals / sizeof totals[0]; i++) {
    const figure_t *f = &totals[i];
    if ((f->flags & COUNTED) && !s->counting)
      continue;
    size_t value = figure_of(s, f);
    note[0] = '\0';
    if (f->flags & BYTES) /* the exact figure too */
      vm_diag_format(note, sizeof note, "(%zu)", value);
    text_line(out, f->label, text_figure(cell, sizeof cell, value, f->flags), note);
  }
  if (s->counting)
    text_line(out, "internal fragmentation",
              percent(cell, sizeof cell, s->allocated_bytes - s->requested_bytes, s->allocated_bytes),
              "(1 - requested / allocated)");
  emit(out, "where the process's RSS is (/proc/self/smaps_rollup; heap by mincore):\n");
  for (size_t i = 0; i < sizeof rss_lines / sizeof rss_lines[0]; i++) {
    size_t value = figure_of(r, &rss_lines[i]);
    if (value == 0 && rss_lines[i].offset == offsetof(rss_split_t, unattributed))
      continue;
    text_line(out, rss_lines[i].label, human_bytes(cell, sizeof cell, value), "");
  }
  emit(out, "largest waste: %s %s\n", w->bytes != 0 ? human_bytes(cell, sizeof cell, w->bytes) : "",
       w->what);
}

/* ---- JSON -------------------------------------------------------------------------- */

/* A class's figures as JSON members, and the closing brace of its object. */
static void json_class(out_t *out, const vmalloc_class_stats_t *k) {
  char cell[32];
  for (size_t i = 0; i < sizeof columns / sizeof columns[0]; i++)
    emit(out, "%s\"%s\": %zu", i == 0 ? "" : ", ", columns[i].key, figure_of(k, &columns[i]));
  emit(out, ", \"fill\": %s}", fraction(cell, sizeof cell, k->used_blocks, k->capacity_blocks));
}

/* The report as one JSON object; its keys are the field names of vmalloc_stats_t. */
static void print_json(out_t *out, const vmalloc_stats_t *s, const rss_split_t *r,
                       const waste_t *w) {
  char cell[32];
  emit(out, "{\n  \"pid\": %d,\n  \"counting\": %s,\n  \"classes\": [", (int)getpid(),
       s->counting ? "true" : "false");
  const char *separator = "\n";
  for (size_t i = 0; i < s->class_count; i++) {
    if (!shown(&s->classes[i]))
      continue;
    emit(out, "%s    {\"class\": %zu, ", separator, i + 1);
    json_class(out, &s->classes[i]);
    separator = ",\n";
  }
  emit(out, "\n  ],\n  \"large\": {");
  json_class(out, &s->large);
  emit(out, ",\n  \"huge\": {");
  json_class(out, &s->huge);
  emit(out, ",\n");
  for (size_t i = 0; i < sizeof totals / sizeof totals[0]; i++)
    emit(out, "  \"%s\": %zu,\n", totals[i].key, figure_of(s, &totals[i]));
  emit(out, "  \"internal_fragmentation\": %s,\n  \"rss\": {",
       fraction(cell, sizeof cell, s->allocated_bytes - s->requested_bytes, s->allocated_bytes));
  for (size_t i = 0; i < sizeof rss_lines / sizeof rss_lines[0]; i++)
    emit(out, "%s\"%s\": %zu", i == 0 ? "" : ", ", rss_lines[i].key, figure_of(r, &rss_lines[i]));
  emit(out, "},\n  \"largest_waste\": {\"bytes\": %zu, \"what\": \"%s\"}\n}\n", w->bytes, w->what);
}

/* ---- entry points ------------------------------------------------------------------ */

/* Takes one snapshot and prints it to fd. */
static void print_report(int fd, bool json) {
  vmalloc_stats_t s = {.size = sizeof s};
  vm_census_t census;
  vm_stats_take(&s, &census);
  rss_split_t rss;
  split_rss(&s, &census, &rss);
  waste_t waste;
  largest_waste(&s, &census, &rss, &waste);
  out_t out = {.fd = fd, .len = 0};
  if (json)
    print_json(&out, &s, &rss, &waste);
  else
    print_text(&out, &s, &rss, &waste);
  flush(&out);
}

/* vmalloc_stats_print(): JSON when VMALLOC_STATS=json, else text. */
int vm_stats_print(int fd) {
  print_report(fd, vm_option(VM_OPTION_STATS) == VM_STATS_JSON);
  return 0;
}

/* VMALLOC_STATS_FILE with every %p replaced by the pid (%% is a %); false if too long. */
static bool report_path(char *path, size_t size) {
  const char *pattern = vm_option_text(VM_OPTION_STATS_FILE);
  size_t len = 0;
  for (const char *p = pattern; *p != '\0'; p++) {
    char piece[24] = {*p, '\0'};
    if (p[0] == '%' && (p[1] == 'p' || p[1] == '%')) {
      p++;
      vm_diag_format(piece, sizeof piece, *p == 'p' ? "%d" : "%%", (int)getpid());
    }
    size_t n = strlen(piece);
    if (len + n >= size)
      return false;
    memcpy(path + len, piece, n);
    len += n;
  }
  path[len] = '\0';
  return true;
}

/* The atexit handler of VMALLOC_STATS: the report to VMALLOC_STATS_FILE or stderr. */
void vm_stats_at_exit(void) {
  const char *pattern = vm_option_text(VM_OPTION_STATS_FILE);
  if (pattern[0] == '\0') {
    vm_stats_print(2);
    return;
  }
  char path[PATH_MAX];
  int fd = report_path(path, sizeof path)
               ? open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644)
               : -1;
  if (fd < 0) {
    vm_diag_warn("vmalloc: cannot write the report to VMALLOC_STATS_FILE=%s; using stderr\n",
                 pattern);
    vm_stats_print(2);
    return;
  }
  vm_stats_print(fd);
  close(fd);
}
