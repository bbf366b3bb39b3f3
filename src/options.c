/* Options: one list (options.def) gives each its name, default, bounds and help. They are
 * read from `environ` directly, once, during process init: getenv-style scanning that
 * allocates nothing. Processes running set-id (AT_SECURE) ignore the environment. */
#include "internal.h"

#include <malloc.h>
#include <stdlib.h>
#include <string.h>
#include <sys/auxv.h>

extern char **environ;

typedef struct {
  const char *name;
  const char *type;
  long value, min, max;
  const char *help;
} option_t;

#define VM_OPTION(name, type, def, lo, hi, help) {#name, type, def, lo, hi, help},
static option_t options[VM_OPTION_COUNT] = {
#include "options.def"
};
#undef VM_OPTION

long vm_option(vm_option_id_t id) { return options[id].value; }

void vm_option_set(vm_option_id_t id, long value) {
  if (value < options[id].min)
    value = options[id].min;
  if (value > options[id].max)
    value = options[id].max;
  options[id].value = value;
}

/* The value of <prefix><name><suffix> in the environment, or NULL. */
static const char *lookup(const char *prefix, const char *name, const char *suffix) {
  if (environ == NULL)
    return NULL;
  size_t plen = strlen(prefix), nlen = strlen(name), slen = strlen(suffix);
  for (char **e = environ; *e != NULL; e++) {
    const char *v = *e;
    if (strncmp(v, prefix, plen) == 0 && strncmp(v + plen, name, nlen) == 0 &&
        strncmp(v + plen + nlen, suffix, slen) == 0 && v[plen + nlen + slen] == '=')
      return v + plen + nlen + slen + 1;
  }
  return NULL;
}

/* The position of `text` among the '|'-separated words of `choices`, or -1. */
static long choice_index(const char *choices, const char *text) {
  size_t len = strlen(text);
  long index = 0;
  for (const char *c = choices; *c != '\0'; index++) {
    const char *end = strchr(c, '|');
    size_t word = end != NULL ? (size_t)(end - c) : strlen(c);
    if (word == len && strncasecmp(c, text, len) == 0)
      return index;
    if (end == NULL)
      break;
    c = end + 1;
  }
  return -1;
}

/* Parses a decimal number, or true/false/yes/no/on/off; false on anything else. */
static bool parse(const char *text, long *out) {
  static const char *const words[][2] = {{"true", "1"}, {"yes", "1"}, {"on", "1"},
                                         {"false", "0"}, {"no", "0"}, {"off", "0"}};
  for (size_t i = 0; i < sizeof words / sizeof words[0]; i++)
    if (strcasecmp(text, words[i][0]) == 0)
      text = words[i][1];
  char *end;
  long value = strtol(text, &end, 10);
  if (end == text || *end != '\0')
    return false;
  *out = value;
  return true;
}

/* glibc's MALLOC_*_ variables that have a vmalloc meaning; the others (ARENA_MAX,
 * ARENA_TEST, TOP_PAD_, TRIM_THRESHOLD_, MMAP_MAX_, PERTURB_, CHECK_) are ignored, as
 * documented in the README. A VMALLOC_ variable wins over its glibc twin. */
static const struct {
  const char *glibc_name;
  vm_option_id_t option;
} glibc_twins[] = {{"MMAP_THRESHOLD", VM_OPTION_MMAP_THRESHOLD}};

void vm_options_init(void) {
  if (getauxval(AT_SECURE))
    return;
  for (size_t i = 0; i < sizeof glibc_twins / sizeof glibc_twins[0]; i++) {
    const char *text = lookup("MALLOC_", glibc_twins[i].glibc_name, "_");
    long value;
    if (text != NULL && parse(text, &value))
      vm_option_set(glibc_twins[i].option, value);
  }
  for (int i = 0; i < VM_OPTION_COUNT; i++) {
    const char *text = lookup("VMALLOC_", options[i].name, "");
    if (text == NULL)
      continue;
    long value = strchr(options[i].type, '|') != NULL ? choice_index(options[i].type, text) : -1;
    if ((value < 0 && !parse(text, &value)) || value < options[i].min ||
        value > options[i].max) {
      vm_diag_warn("vmalloc: ignoring VMALLOC_%s=%s (expected %ld..%ld); using %ld\n",
                   options[i].name, text, options[i].min, options[i].max, options[i].value);
      continue;
    }
    options[i].value = value;
  }
}

/* Writes the options in force, one line each, to fd. */
void vm_options_print(int fd) {
  char line[256];
  for (int i = 0; i < VM_OPTION_COUNT; i++) {
    int len = vm_diag_format(line, sizeof line, "vmalloc: VMALLOC_%s=%ld  (%s)\n",
                             options[i].name, options[i].value, options[i].help);
    vm_diag_write(fd, line, (size_t)len);
  }
}

/* mallopt(): glibc's parameters. M_MMAP_THRESHOLD maps to VMALLOC_MMAP_THRESHOLD (clamped
 * to what vmalloc can do: 128 KiB to 2 MiB); the others are accepted and have no effect,
 * since vmalloc has no arenas, no top chunk and its own purge schedule. Unknown
 * parameters are refused (0). */
int vm_mallopt(int param, int value) {
  switch (param) {
  case M_MMAP_THRESHOLD:
    vm_option_set(VM_OPTION_MMAP_THRESHOLD, value > 0 ? (long)value - 1 : 0);
    return 1;
  case M_MXFAST:
  case M_TRIM_THRESHOLD:
  case M_TOP_PAD:
  case M_MMAP_MAX:
  case M_CHECK_ACTION:
  case M_PERTURB:
  case M_ARENA_TEST:
  case M_ARENA_MAX:
    return 1;
  default:
    return 0;
  }
}
