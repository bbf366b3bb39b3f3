/* Options: one list (options.def) gives each its name, default, bounds and help. They are
 * read from the environment directly, once, during process init: getenv-style scanning
 * that allocates nothing. Processes running set-id (AT_SECURE) ignore the environment;
 * init.c says which environment and whether the process is set-id, so tests can fake
 * both. */
#include "internal.h"

#include <malloc.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
  const char *name;
  const char *type;
  long value, min, max;
  const char *text; /* VM_OPTION_TEXT options: the value; NULL for numbers */
  const char *help;
} option_t;

#define VM_OPTION(name, type, def, lo, hi, help) {#name, type, def, lo, hi, NULL, help},
#define VM_OPTION_TEXT(name, type, def, help) {#name, type, 0, 0, 0, def, help},
static option_t options[VM_OPTION_COUNT] = {
#include "options.def"
};
#undef VM_OPTION
#undef VM_OPTION_TEXT

/* Text values are copied here: the program may change its environment later. Options
 * are read once, so a few KiB hold them all; a value that does not fit is refused. */
static char text_pool[4096];
static size_t text_pool_used;

long vm_option(vm_option_id_t id) { return options[id].value; }

const char *vm_option_text(vm_option_id_t id) {
  return options[id].text != NULL ? options[id].text : "";
}

void vm_option_set(vm_option_id_t id, long value) {
  if (value < options[id].min)
    value = options[id].min;
  if (value > options[id].max)
    value = options[id].max;
  options[id].value = value;
}

/* The value of <prefix><name><suffix> in the environment, or NULL. */
static const char *lookup(char *const *environment, const char *prefix, const char *name,
                          const char *suffix) {
  if (environment == NULL)
    return NULL;
  size_t plen = strlen(prefix), nlen = strlen(name), slen = strlen(suffix);
  for (char *const *e = environment; *e != NULL; e++) {
    const char *v = *e;
    if (strncmp(v, prefix, plen) == 0 && strncmp(v + plen, name, nlen) == 0 &&
        strncmp(v + plen + nlen, suffix, slen) == 0 && v[plen + nlen + slen] == '=')
      return v + plen + nlen + slen + 1;
  }
  return NULL;
}

/* The word for a value of a type that has words ("abort|warn"), or NULL. */
static const char *choice_word(const char *choices, long index, size_t *len) {
  if (strchr(choices, '|') == NULL)
    return NULL;
  for (const char *c = choices; index >= 0; index--) {
    const char *end = strchr(c, '|');
    *len = end != NULL ? (size_t)(end - c) : strlen(c);
    if (index == 0)
      return c;
    if (end == NULL)
      break;
    c = end + 1;
  }
  return NULL;
}

/* The position of `text` among the '|'-separated words of `choices`, or -1. */
static long choice_index(const char *choices, const char *text) {
  size_t len;
  const char *word;
  for (long index = 0; (word = choice_word(choices, index, &len)) != NULL; index++)
    if (len == strlen(text) && strncasecmp(word, text, len) == 0)
      return index;
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

/* An option's value as it would be written: a word where the type has words. */
static const char *shown_value(const option_t *option, char *buf, size_t size) {
  if (option->text != NULL)
    return option->text;
  size_t len = 0;
  const char *word = choice_word(option->type, option->value, &len);
  if (word != NULL && len < size) {
    memcpy(buf, word, len);
    buf[len] = '\0';
  } else {
    vm_diag_format(buf, size, "%ld", option->value);
  }
  return buf;
}

/* Keeps a copy of a text option's value; false when the pool is full. */
static bool set_text(option_t *option, const char *text) {
  size_t len = strlen(text) + 1;
  if (len > sizeof text_pool - text_pool_used)
    return false;
  char *copy = text_pool + text_pool_used;
  memcpy(copy, text, len);
  text_pool_used += len;
  option->text = copy;
  return true;
}

/* Sets a numeric option from its text: a word of its type, a number or a boolean word.
 * On a bad value, one warning line names the variable and the default stays. */
static void set_number(option_t *option, const char *text) {
  bool has_words = strchr(option->type, '|') != NULL;
  long value = has_words ? choice_index(option->type, text) : -1;
  if ((value < 0 && !parse(text, &value)) || value < option->min || value > option->max) {
    char kept[64];
    vm_diag_warn("vmalloc: ignoring VMALLOC_%s=%s (expected %s%s%ld..%ld); keeping %s\n",
                 option->name, text, has_words ? option->type : "", has_words ? " or " : "",
                 option->min, option->max, shown_value(option, kept, sizeof kept));
    return;
  }
  option->value = value;
}

void vm_options_init(char *const *environment, bool secure) {
  if (secure)
    return;
  for (size_t i = 0; i < sizeof glibc_twins / sizeof glibc_twins[0]; i++) {
    const char *text = lookup(environment, "MALLOC_", glibc_twins[i].glibc_name, "_");
    long value;
    if (text != NULL && parse(text, &value))
      vm_option_set(glibc_twins[i].option, value);
  }
  for (int i = 0; i < VM_OPTION_COUNT; i++) {
    option_t *option = &options[i];
    const char *text = lookup(environment, "VMALLOC_", option->name, "");
    if (text == NULL)
      continue;
    if (option->text == NULL)
      set_number(option, text);
    else if (!set_text(option, text))
      vm_diag_warn("vmalloc: ignoring VMALLOC_%s (too long); keeping \"%s\"\n", option->name,
                   vm_option_text((vm_option_id_t)i));
  }
}

/* Writes the options in force, one line each, to fd. */
void vm_options_print(int fd) {
  char line[512], value[64];
  for (int i = 0; i < VM_OPTION_COUNT; i++) {
    int len = vm_diag_format(line, sizeof line, "vmalloc: VMALLOC_%s=%s  (%s)\n",
                             options[i].name, shown_value(&options[i], value, sizeof value),
                             options[i].help);
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
