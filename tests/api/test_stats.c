/* Seeing inside the heap: the counters of VMALLOC_STATS are exact after known sequences of
 * calls, the report at exit goes where VMALLOC_STATS_FILE says (%p: the pid), its JSON
 * is valid and agrees with vmalloc_stats_get and mallinfo2, and its RSS reconciliation
 * matches what the kernel says. VMALLOC_STATS is read once at start-up, so those cases
 * re-run this program with it set; without it, vmalloc_stats_get and the report still
 * show what the pages hold and say the counters are off. */
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <malloc.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include <cmocka.h>

#include "../testutil.h"
#include "vmalloc.h"

/* ---- a strict JSON checker (RFC 8259) ------------------------------------------------ */

typedef struct {
  const char *p;
  int depth;
} json_t;

static bool json_value(json_t *j);

static void json_space(json_t *j) {
  while (*j->p == ' ' || *j->p == '\t' || *j->p == '\n' || *j->p == '\r')
    j->p++;
}

static bool json_literal(json_t *j, const char *word) {
  size_t n = strlen(word);
  if (strncmp(j->p, word, n) != 0)
    return false;
  j->p += n;
  return true;
}

static bool json_string(json_t *j) {
  if (*j->p++ != '"')
    return false;
  for (;;) {
    unsigned char c = (unsigned char)*j->p++;
    if (c == '"')
      return true;
    if (c < 0x20)
      return false; /* the end of the text, or an unescaped control character */
    if (c != '\\')
      continue;
    c = (unsigned char)*j->p++;
    if (c == 'u') {
      for (int i = 0; i < 4; i++)
        if (!isxdigit((unsigned char)*j->p++))
          return false;
    } else if (strchr("\"\\/bfnrt", c) == NULL || c == '\0') {
      return false;
    }
  }
}

static bool json_digits(json_t *j) {
  if (!isdigit((unsigned char)*j->p))
    return false;
  while (isdigit((unsigned char)*j->p))
    j->p++;
  return true;
}

static bool json_number(json_t *j) {
  if (*j->p == '-')
    j->p++;
  if (*j->p == '0')
    j->p++;
  else if (!json_digits(j))
    return false;
  if (*j->p == '.') {
    j->p++;
    if (!json_digits(j))
      return false;
  }
  if (*j->p == 'e' || *j->p == 'E') {
    j->p++;
    if (*j->p == '+' || *j->p == '-')
      j->p++;
    if (!json_digits(j))
      return false;
  }
  return true;
}

/* An object ('{', members of string: value) or an array ('[', values), after its opener. */
static bool json_container(json_t *j, char close, bool members) {
  if (++j->depth > 64)
    return false;
  j->p++;
  json_space(j);
  if (*j->p == close) {
    j->p++;
    j->depth--;
    return true;
  }
  for (;;) {
    json_space(j);
    if (members) {
      if (!json_string(j))
        return false;
      json_space(j);
      if (*j->p++ != ':')
        return false;
    }
    if (!json_value(j))
      return false;
    json_space(j);
    if (*j->p == ',') {
      j->p++;
      continue;
    }
    if (*j->p++ != close)
      return false;
    j->depth--;
    return true;
  }
}

static bool json_value(json_t *j) {
  json_space(j);
  switch (*j->p) {
  case '{':
    return json_container(j, '}', true);
  case '[':
    return json_container(j, ']', false);
  case '"':
    return json_string(j);
  case 't':
    return json_literal(j, "true");
  case 'f':
    return json_literal(j, "false");
  case 'n':
    return json_literal(j, "null");
  default:
    return json_number(j);
  }
}

/* Whether text is exactly one JSON value (with surrounding white space). */
static bool json_valid(const char *text) {
  json_t j = {text, 0};
  if (!json_value(&j))
    return false;
  json_space(&j);
  return *j.p == '\0';
}

/* The number after the first "key": at or after `from` (SIZE_MAX if absent). */
static size_t json_field(const char *from, const char *key) {
  char quoted[96];
  snprintf(quoted, sizeof quoted, "\"%s\": ", key);
  const char *at = strstr(from, quoted);
  return at == NULL ? SIZE_MAX : strtoull(at + strlen(quoted), NULL, 10);
}

static void json_checker_accepts_and_refuses(void **state) {
  (void)state;
  assert_true(json_valid("{\"a\": [1, -2.5e3, true, false, null, \"x\\n\\u00e9\"], \"b\": {}}"));
  assert_true(json_valid(" [] "));
  assert_false(json_valid("{\"a\": 1,}"));
  assert_false(json_valid("{\"a\" 1}"));
  assert_false(json_valid("[01]"));
  assert_false(json_valid("[1.]"));
  assert_false(json_valid("{\"a\": 1} x"));
  assert_false(json_valid("\"tab\there\""));
  assert_false(json_valid("{\"a\": [1, 2}"));
}

/* ---- helpers ------------------------------------------------------------------------ */

static void take(vmalloc_stats_t *s) {
  memset(s, 0, sizeof *s);
  s->size = sizeof *s;
  CHECK(vmalloc_stats_get(s) == 0, "vmalloc_stats_get failed: errno %d", errno);
}

/* The entry of classes[] whose blocks are block_size bytes. */
static const vmalloc_class_stats_t *class_of(const vmalloc_stats_t *s, size_t block_size) {
  for (size_t i = 0; i < s->class_count; i++)
    if (s->classes[i].block_size == block_size)
      return &s->classes[i];
  CHECK(false, "no %zu-byte class", block_size);
  return NULL;
}

static size_t max_size(size_t a, size_t b) { return a > b ? a : b; }

/* Reads a whole file into a static buffer (the report's JSON is a few KiB). */
static const char *slurp(const char *path) {
  static char text[1 << 20];
  int fd = open(path, O_RDONLY);
  CHECK(fd >= 0, "cannot open %s", path);
  size_t len = 0;
  ssize_t n;
  while ((n = read(fd, text + len, sizeof text - 1 - len)) > 0)
    len += (size_t)n;
  close(fd);
  text[len] = '\0';
  return text;
}

/* The process's Rss in bytes, read here the way a user would. */
static size_t smaps_rss(void) {
  FILE *f = fopen("/proc/self/smaps_rollup", "r");
  char line[256];
  size_t kib = 0;
  while (f != NULL && fgets(line, sizeof line, f) != NULL)
    if (sscanf(line, "Rss: %zu kB", &kib) == 1)
      break;
  if (f != NULL)
    fclose(f);
  return kib * 1024;
}

/* Runs this program again as `mode` with the environment assignments given (NULL-ended),
 * its stderr into err (if not NULL); returns its exit status and its pid in *pid. */
static int rerun(const char *mode, const char *const *assignments, char *err, size_t err_size,
                 pid_t *pid_out) {
  int status = run_self((const char *[]){mode, NULL}, assignments, err, err_size, pid_out);
  assert_int_not_equal(status, -1);
  if (err != NULL && !(WIFEXITED(status) && WEXITSTATUS(status) == 0))
    fprintf(stderr, "child %s said:\n%s\n", mode, err);
  return exit_code(status);
}

/* ---- children, run with VMALLOC_STATS set ------------------------------------------- */

enum { SMALL = 1000, SMALL_FREED = 400, REMOTE = 500 };
static void *blocks[SMALL];

/* Class blocks: N mallocs of 100 bytes (the 112-byte class), then M frees. */
static void count_class_blocks(void) {
  static vmalloc_stats_t before, mid, after;
  take(&before);
  for (int i = 0; i < SMALL; i++)
    blocks[i] = malloc(100);
  take(&mid);
  for (int i = 0; i < SMALL_FREED; i++)
    free(blocks[i]);
  take(&after);
  const vmalloc_class_stats_t *b = class_of(&before, 112), *m = class_of(&mid, 112),
                              *a = class_of(&after, 112);
  CHECK(m->allocs - b->allocs == SMALL, "allocs grew by %zu", m->allocs - b->allocs);
  CHECK(m->frees == b->frees, "frees moved during mallocs");
  CHECK(m->live_blocks - b->live_blocks == SMALL, "live grew by %zu", m->live_blocks - b->live_blocks);
  CHECK(m->peak_blocks == max_size(b->peak_blocks, b->live_blocks + SMALL), "peak %zu", m->peak_blocks);
  CHECK(a->frees - m->frees == SMALL_FREED, "frees grew by %zu", a->frees - m->frees);
  CHECK(a->allocs == m->allocs, "allocs moved during frees");
  CHECK(a->live_blocks == b->live_blocks + SMALL - SMALL_FREED, "live %zu", a->live_blocks);
  CHECK(a->peak_blocks == m->peak_blocks, "peak moved during frees");
  CHECK(mid.requested_bytes - before.requested_bytes == SMALL * 100, "requested grew by %zu",
        mid.requested_bytes - before.requested_bytes);
  CHECK(mid.allocated_bytes - before.allocated_bytes == SMALL * 112, "allocated grew by %zu",
        mid.allocated_bytes - before.allocated_bytes);
  CHECK(mid.live_bytes - before.live_bytes == SMALL * 112, "live bytes grew by %zu",
        mid.live_bytes - before.live_bytes);
  CHECK(before.live_bytes - after.live_bytes + SMALL * 112 == SMALL_FREED * 112, "live bytes %zu",
        after.live_bytes);
  CHECK(mid.peak_bytes == max_size(before.peak_bytes, before.live_bytes + SMALL * 112),
        "peak bytes %zu", mid.peak_bytes);
  CHECK(after.requested_bytes == mid.requested_bytes, "frees changed requested bytes");
  CHECK(a->used_blocks >= a->live_blocks - b->live_blocks, "the pages hold fewer blocks");
  for (int i = SMALL_FREED; i < SMALL; i++)
    free(blocks[i]);
}

/* Large (runs of slices) and huge (own mapping) blocks, and a huge block resized. */
static void count_large_and_huge(void) {
  static vmalloc_stats_t before, mid, after;
  take(&before);
  void *large[3];
  size_t large_bytes = 0;
  for (int i = 0; i < 3; i++) {
    large[i] = malloc(300 << 10);
    large_bytes += malloc_usable_size(large[i]);
  }
  void *huge = malloc(5 << 20);
  size_t huge_bytes = malloc_usable_size(huge);
  take(&mid);
  CHECK(mid.large.allocs - before.large.allocs == 3, "large allocs grew by %zu",
        mid.large.allocs - before.large.allocs);
  CHECK(mid.large.live_blocks - before.large.live_blocks == 3, "large live");
  CHECK(mid.huge.allocs - before.huge.allocs == 1, "huge allocs");
  CHECK(mid.huge.live_blocks - before.huge.live_blocks == 1, "huge live");
  CHECK(mid.requested_bytes - before.requested_bytes == 3 * (300 << 10) + (5 << 20), "requested");
  CHECK(mid.allocated_bytes - before.allocated_bytes == large_bytes + huge_bytes,
        "allocated grew by %zu, not %zu", mid.allocated_bytes - before.allocated_bytes,
        large_bytes + huge_bytes);
  CHECK(mid.live_bytes - before.live_bytes == large_bytes + huge_bytes, "live bytes");
  huge = realloc(huge, 9 << 20);
  size_t resized = malloc_usable_size(huge);
  take(&after);
  CHECK(after.huge.allocs == mid.huge.allocs && after.huge.frees == mid.huge.frees,
        "resizing a huge block is neither an alloc nor a free");
  CHECK(after.requested_bytes - mid.requested_bytes == (9 << 20), "requested after realloc");
  CHECK(after.allocated_bytes - mid.allocated_bytes == resized, "allocated after realloc");
  CHECK(after.live_bytes - mid.live_bytes == resized - huge_bytes, "live after realloc");
  free(huge);
  for (int i = 0; i < 3; i++)
    free(large[i]);
  take(&after);
  CHECK(after.huge.frees - mid.huge.frees == 1 && after.large.frees - mid.large.frees == 3,
        "large and huge frees");
  CHECK(after.live_bytes == before.live_bytes, "live bytes back to %zu, not %zu",
        after.live_bytes, before.live_bytes);
}

static void *free_remote_blocks(void *arg) {
  (void)arg;
  void *volatile own = malloc(16); /* a heap of its own: one more thread seen */
  free(own);
  for (int i = 0; i < REMOTE; i++)
    free(blocks[i]);
  return NULL;
}

static void *allocate_once(void *arg) {
  (void)arg;
  void *volatile own = malloc(16);
  free(own);
  return NULL;
}

/* Blocks freed by another thread count as cross-thread frees; the thread counts once. */
static void count_cross_thread_frees(void) {
  static vmalloc_stats_t before, after;
  pthread_t thread;
  CHECK(pthread_create(&thread, NULL, allocate_once, NULL) == 0, "pthread_create");
  pthread_join(thread, NULL); /* later threads reuse its stack and thread-local storage */
  for (int i = 0; i < REMOTE; i++)
    blocks[i] = malloc(48);
  take(&before);
  CHECK(pthread_create(&thread, NULL, free_remote_blocks, NULL) == 0, "pthread_create");
  pthread_join(thread, NULL);
  take(&after);
  CHECK(after.cross_thread_frees - before.cross_thread_frees == REMOTE,
        "cross-thread frees grew by %zu", after.cross_thread_frees - before.cross_thread_frees);
  CHECK(after.threads_seen - before.threads_seen == 1, "threads seen grew by %zu",
        after.threads_seen - before.threads_seen);
  const vmalloc_class_stats_t *b = class_of(&before, 48), *a = class_of(&after, 48);
  CHECK(a->frees - b->frees == REMOTE, "48-byte frees grew by %zu", a->frees - b->frees);
  CHECK(before.threads_seen >= 2, "threads seen %zu", before.threads_seen);
  /* the exited thread's heap waits whole for the next thread, which takes it */
  CHECK(after.heaps_parked == 1 && after.heaps_in_use == 1, "heaps parked %zu, in use %zu",
        after.heaps_parked, after.heaps_in_use);
  CHECK(after.heaps_made == before.heaps_made, "heaps made grew by %zu",
        after.heaps_made - before.heaps_made);
}

static int child_counters(void) {
  static vmalloc_stats_t s;
  take(&s); /* the first call into the heap: it must still know the options */
  CHECK(s.counting == 1, "counting is off under VMALLOC_STATS");
  count_class_blocks();
  count_large_and_huge();
  count_cross_thread_frees();
  return 0;
}

/* The JSON report against vmalloc_stats_get and mallinfo2, all taken at one moment. */
static int child_json_report(void) {
  static vmalloc_stats_t s;
  static char path[64];
  for (int i = 0; i < SMALL; i++)
    blocks[i] = malloc((size_t)(i % 50) * 40 + 1);
  void *huge = malloc(3 << 20);
  snprintf(path, sizeof path, "/tmp/vmalloc-report-%d.json", (int)getpid());
  int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600); /* before: open may allocate */
  CHECK(fd >= 0, "cannot create %s", path);
  struct mallinfo2 info = mallinfo2();
  take(&s);
  CHECK(vmalloc_stats_print(fd) == 0, "vmalloc_stats_print");
  struct mallinfo2 info_after = mallinfo2();
  close(fd);
  CHECK(memcmp(&info, &info_after, sizeof info) == 0, "the report changed the heap");
  const char *json = slurp(path);
  CHECK(json_valid(json), "the report is not valid JSON:\n%s", json);
  CHECK(json_field(json, "pid") == (size_t)getpid(), "pid");
  CHECK(strstr(json, "\"counting\": true") != NULL, "counting");
  CHECK(json_field(json, "live_bytes") == s.live_bytes, "live_bytes %zu vs %zu",
        json_field(json, "live_bytes"), s.live_bytes);
  CHECK(json_field(json, "requested_bytes") == s.requested_bytes, "requested_bytes");
  CHECK(json_field(json, "allocated_bytes") == s.allocated_bytes, "allocated_bytes");
  CHECK(json_field(json, "segment_bytes") == info.arena, "segment_bytes %zu, arena %zu",
        json_field(json, "segment_bytes"), info.arena);
  CHECK(json_field(strstr(json, "\"huge\""), "pages") == info.hblks, "huge pages vs hblks");
  CHECK(json_field(json, "peak_bytes") == info.usmblks, "peak_bytes vs usmblks");
  /* every class in use is in the report, and their used blocks make up uordblks */
  size_t in_blocks = 0, listed = 0;
  for (size_t i = 0; i < s.class_count; i++) {
    const vmalloc_class_stats_t *k = &s.classes[i];
    char entry[32];
    snprintf(entry, sizeof entry, "{\"class\": %zu, ", i + 1);
    const char *at = strstr(json, entry);
    in_blocks += k->used_blocks * k->block_size;
    if (k->pages == 0 && k->allocs == 0)
      continue;
    listed++;
    CHECK(at != NULL, "class %zu missing from the report", i + 1);
    CHECK(json_field(at, "allocs") == k->allocs && json_field(at, "used_blocks") == k->used_blocks,
          "class %zu differs", i + 1);
  }
  CHECK(listed > 10, "only %zu classes listed", listed);
  CHECK(s.large.used_blocks != 0 || in_blocks == info.uordblks, "classes hold %zu, uordblks %zu",
        in_blocks, info.uordblks);
  CHECK(s.resident <= s.committed && s.committed <= s.reserved, "memory figures out of order");
  free(huge);
  /* python3, when there is one, must read it too */
  char command[256];
  snprintf(command, sizeof command,
           "command -v python3 >/dev/null || exit 0; python3 -c 'import json,sys; json.load(open(sys.argv[1]))' %s",
           path);
  int status = system(command);
  unlink(path);
  CHECK(status == 0, "python3 could not read the report");
  return 0;
}

/* The reconciliation with the kernel's figure: the report's process RSS is what
 * smaps_rollup says, the heap's part holds the blocks, and the parts add up. Freed memory
 * counts by its resident pages, not its size: 100 MiB of big blocks touched one page each
 * and freed do not crowd the live blocks out of the heap's part. */
static int child_rss(void) {
  enum { COUNT = 65536, BIG = 400, BIG_SIZE = 256 << 10 };
  static void *held[COUNT], *big[BIG];
  static char path[64];
  for (int i = 0; i < BIG; i++) {
    big[i] = malloc(BIG_SIZE);
    CHECK(big[i] != NULL, "malloc(%d)", BIG_SIZE);
    *(volatile char *)big[i] = 1;
  }
  for (int i = 0; i < BIG; i++)
    free(big[i]);
  for (int i = 0; i < COUNT; i++) {
    held[i] = malloc(1000);
    fill_bytes(held[i], i, 1000);
  }
  snprintf(path, sizeof path, "/tmp/vmalloc-rss-%d.json", (int)getpid());
  int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
  CHECK(fd >= 0, "cannot create %s", path);
  vmalloc_stats_print(fd);
  close(fd);
  size_t rss = smaps_rss();
  const char *json = slurp(path);
  unlink(path);
  CHECK(json_valid(json), "invalid JSON");
  const char *split = strstr(json, "\"rss\": {");
  CHECK(split != NULL, "no rss object");
  size_t process = json_field(split, "process"), heap = json_field(split, "heap");
  fprintf(stderr, "  report: process RSS %zu KiB, heap %zu KiB; smaps_rollup: %zu KiB\n",
          process >> 10, heap >> 10, rss >> 10);
  CHECK(process > rss - rss / 20 && process < rss + rss / 20, "process RSS %zu vs %zu", process, rss);
  CHECK(heap <= process, "heap %zu above the process %zu", heap, process);
  CHECK(json_field(split, "live") >= (size_t)COUNT * 1000, "live %zu", json_field(split, "live"));
  CHECK(heap >= (size_t)COUNT * 1024, "heap %zu", heap);
  size_t parts = json_field(split, "live") + json_field(split, "free_in_pages") +
                 json_field(split, "lazy") + json_field(split, "awaiting_purge") +
                 json_field(split, "metadata") + json_field(split, "unattributed");
  CHECK(parts == heap, "parts add up to %zu, heap is %zu", parts, heap);
  CHECK(json_field(split, "not_heap") == process - heap, "not_heap");
  for (int i = 0; i < COUNT; i++)
    free(held[i]);
  return 0;
}

/* The largest waste the report names is resident memory, not address space: a block of
 * a big class leaves most of its 576 KiB page free but untouched, while blocks of 256
 * bytes freed every other one leave less free space, all of it in RAM. */
static int child_waste(void) {
  enum { SMALL_COUNT = 3000, SMALL_SIZE = 256, BIG_SIZE = 10240 };
  static void *small[SMALL_COUNT];
  void *big = malloc(BIG_SIZE);
  CHECK(big != NULL, "malloc(%d)", BIG_SIZE);
  memset(big, 1, BIG_SIZE);
  for (int i = 0; i < SMALL_COUNT; i++) {
    small[i] = malloc(SMALL_SIZE);
    CHECK(small[i] != NULL, "malloc(%d)", SMALL_SIZE);
    memset(small[i], 1, SMALL_SIZE);
  }
  for (int i = 0; i < SMALL_COUNT; i += 2)
    free(small[i]);
  char path[] = "/tmp/vmalloc-waste-XXXXXX";
  int fd = mkstemp(path);
  CHECK(fd >= 0, "mkstemp");
  CHECK(vmalloc_stats_print(fd) == 0, "vmalloc_stats_print");
  close(fd);
  const char *text = slurp(path);
  unlink(path);
  const char *line = strstr(text, "\nlargest waste: ");
  CHECK(line != NULL, "no largest waste line in:\n%s", text);
  CHECK(strstr(line, "free inside pages of class") != NULL &&
            strstr(line, "(256-byte blocks)") != NULL,
        "the largest waste should be the 256-byte class's freed blocks:%s", line);
  free(big);
  return 0;
}

/* Allocates a little and exits: the report comes from the atexit handler. */
static int child_exit(void) {
  for (int i = 0; i < SMALL; i++)
    blocks[i] = malloc(64);
  return 0;
}

/* ---- the tests --------------------------------------------------------------------- */

static void counters_are_exact(void **state) {
  (void)state;
  const char *env[] = {"VMALLOC_STATS=json", "VMALLOC_STATS_FILE=/dev/null", NULL};
  assert_int_equal(rerun("counters", env, NULL, 0, NULL), 0);
}

static void json_report_agrees_with_the_api(void **state) {
  (void)state;
  const char *env[] = {"VMALLOC_STATS=json", "VMALLOC_STATS_FILE=/dev/null", NULL};
  assert_int_equal(rerun("json-report", env, NULL, 0, NULL), 0);
}

static void reconciliation_matches_the_kernel(void **state) {
  (void)state;
  const char *env[] = {"VMALLOC_STATS=json", "VMALLOC_STATS_FILE=/dev/null", NULL};
  assert_int_equal(rerun("rss", env, NULL, 0, NULL), 0);
}

static void report_at_exit_goes_to_the_pid_file(void **state) {
  (void)state;
  char dir[] = "/tmp/vmalloc-stats-XXXXXX";
  assert_non_null(mkdtemp(dir));
  static char assignment[128];
  snprintf(assignment, sizeof assignment, "VMALLOC_STATS_FILE=%s/report-%%p.json", dir);
  const char *env[] = {"VMALLOC_STATS=json", assignment, NULL};
  char err[4096];
  pid_t pid;
  assert_int_equal(rerun("exit", env, err, sizeof err, &pid), 0);
  assert_string_equal(err, ""); /* nothing on stderr: it all went to the file */
  char path[192];
  snprintf(path, sizeof path, "%s/report-%d.json", dir, (int)pid);
  const char *json = slurp(path);
  if (!json_valid(json))
    fail_msg("the report in %s is not valid JSON:\n%s", path, json);
  assert_int_equal(json_field(json, "pid"), pid);
  const char *class_64 = strstr(json, "{\"class\": 4, \"block_size\": 64, ");
  assert_non_null(class_64);
  assert_true(json_field(class_64, "live_blocks") >= SMALL);
  unlink(path);
  rmdir(dir);
}

static void text_report_at_exit_goes_to_stderr(void **state) {
  (void)state;
  const char *env[] = {"VMALLOC_STATS=1", NULL};
  static char err[1 << 16];
  pid_t pid;
  assert_int_equal(rerun("exit", env, err, sizeof err, &pid), 0);
  char heading[96];
  snprintf(heading, sizeof heading, "vmalloc heap report, pid %d: counters on\n", (int)pid);
  if (strncmp(err, heading, strlen(heading)) != 0)
    fail_msg("the report does not start with \"%s\":\n%s", heading, err);
  assert_non_null(strstr(err, "\n  requested "));
  assert_non_null(strstr(err, "\n  internal fragmentation "));
  assert_non_null(strstr(err, "\n  process RSS "));
  assert_non_null(strstr(err, "\nlargest waste: "));
}

static void largest_waste_is_resident_memory(void **state) {
  (void)state;
  const char *env[] = {NULL};
  static char err[1 << 16];
  assert_int_equal(rerun("waste", env, err, sizeof err, NULL), 0);
}

/* Without VMALLOC_STATS: nothing is counted, the pages still tell what is live. */
static void without_counters_the_pages_still_show(void **state) {
  (void)state;
  enum { COUNT = 100 };
  static vmalloc_stats_t before, during;
  take(&before);
  assert_int_equal(before.counting, 0);
  void *held[COUNT];
  for (int i = 0; i < COUNT; i++)
    held[i] = malloc(3000); /* the 3072-byte class */
  take(&during);
  const vmalloc_class_stats_t *b = class_of(&before, 3072), *d = class_of(&during, 3072);
  assert_int_equal(d->used_blocks - b->used_blocks, COUNT);
  assert_int_equal(d->live_blocks, d->used_blocks);
  assert_int_equal(d->allocs, 0);
  assert_int_equal(during.requested_bytes, 0);
  assert_true(d->capacity_blocks >= d->used_blocks);
  assert_int_equal(d->free_bytes, d->pages * (64 << 10) - d->used_blocks * 3072);
  assert_true(during.threads_seen >= 1);
  struct mallinfo2 info = mallinfo2();
  assert_int_equal(during.segment_bytes, info.arena);

  char path[] = "/tmp/vmalloc-text-XXXXXX";
  int fd = mkstemp(path);
  assert_true(fd >= 0);
  assert_int_equal(vmalloc_stats_print(fd), 0);
  close(fd);
  const char *text = slurp(path);
  unlink(path);
  assert_non_null(strstr(text, "counters off"));
  assert_null(strstr(text, "\n  requested "));
  assert_non_null(strstr(text, "\n  process RSS "));
  for (int i = 0; i < COUNT; i++)
    free(held[i]);
}

static void a_bad_argument_is_refused(void **state) {
  (void)state;
  errno = 0;
  assert_int_equal(vmalloc_stats_get(NULL), -1);
  assert_int_equal(errno, EINVAL);
  static vmalloc_stats_t s;
  s.size = offsetof(vmalloc_stats_t, heaps_made);
  errno = 0;
  assert_int_equal(vmalloc_stats_get(&s), -1);
  assert_int_equal(errno, EINVAL);
}

int main(int argc, char **argv) {
  static const struct {
    const char *mode;
    int (*run)(void);
  } children[] = {{"counters", child_counters}, {"json-report", child_json_report},
                  {"rss", child_rss},           {"exit", child_exit},
                  {"waste", child_waste}};
  for (size_t i = 0; argc > 1 && i < sizeof children / sizeof children[0]; i++)
    if (strcmp(argv[1], children[i].mode) == 0)
      return children[i].run();
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(json_checker_accepts_and_refuses),
      cmocka_unit_test(counters_are_exact),
      cmocka_unit_test(json_report_agrees_with_the_api),
      cmocka_unit_test(reconciliation_matches_the_kernel),
      cmocka_unit_test(report_at_exit_goes_to_the_pid_file),
      cmocka_unit_test(text_report_at_exit_goes_to_stderr),
      cmocka_unit_test(largest_waste_is_resident_memory),
      cmocka_unit_test(without_counters_the_pages_still_show),
      cmocka_unit_test(a_bad_argument_is_refused),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
