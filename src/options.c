/* Options: one list (options.def) gives each its name, default, bounds and help. They are
 * read from `environ` directly, once, during process init: getenv-style scanning that
 * allocates nothing. Processes running set-id (AT_SECURE) ignore the environment. */
#include "internal.h"

#include <stdlib.h>
#include <string.h>
#include <sys/auxv.h>

extern char **environ;

typedef struct {
  const char *name;
  long value, min, max;
  const char *help;
} option_t;

#define VM_OPTION(name, type, def, lo, hi, help) {#name, def, lo, hi, help},
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

/* The value of VMALLOC_<name> in the environment, or NULL. */
static const char *lookup(const char *name) {
  if (environ == NULL)
    return NULL;
  size_t len = strlen(name);
  for (char **e = environ; *e != NULL; e++) {
    if (strncmp(*e, "VMALLOC_", 8) == 0 && strncmp(*e + 8, name, len) == 0 &&
        (*e)[8 + len] == '=')
      return *e + 8 + len + 1;
  }
  return NULL;
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

void vm_options_init(void) {
  if (getauxval(AT_SECURE))
    return;
  for (int i = 0; i < VM_OPTION_COUNT; i++) {
    const char *text = lookup(options[i].name);
    if (text == NULL)
      continue;
    long value;
    if (!parse(text, &value) || value < options[i].min || value > options[i].max) {
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
