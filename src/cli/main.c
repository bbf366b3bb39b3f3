/* The vmalloc command: reads the command line and hands it to `run` or `compare`. */
#include "cli.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#ifndef VM_VERSION
#define VM_VERSION "unknown"
#endif

static const char usage_text[] =
    "usage: vmalloc run [--stats] [--lib PATH] [--] COMMAND [ARG...]\n"
    "       vmalloc compare [-n N] [--svg FILE] [--lib PATH] [--] COMMAND [ARG...]\n"
    "       vmalloc --help | --version\n";

static const char help_text[] =
    "\n"
    "run      runs COMMAND on vmalloc: libvmalloc.so goes first in LD_PRELOAD (entries\n"
    "         already there are kept); the exit status is COMMAND's.\n"
    "  --stats      also set VMALLOC_STATS=1: the library prints a heap report at exit\n"
    "\n"
    "compare  runs COMMAND on glibc (LD_PRELOAD cleared), on vmalloc and on each installed\n"
    "         peer (jemalloc, mimalloc, tcmalloc; LD_PRELOAD naming it alone), N times each,\n"
    "         interleaved, and prints a table: wall time, CPU time, peak and final RSS of\n"
    "         the process tree (COMMAND and all it starts, sampled every 10 ms from /proc),\n"
    "         medians, with ratios to glibc. It writes a chart of RSS over time, one line\n"
    "         per allocator: its run of median wall time. COMMAND's stdin and stdout are\n"
    "         /dev/null; its stderr is shown when it fails, and a failed run marks its\n"
    "         allocator FAIL. Exit status 0 when every run succeeded, else 1.\n"
    "  -n N         runs per allocator (default 3)\n"
    "  --svg FILE   the chart (default vmalloc-compare.svg)\n"
    "\n"
    "--lib PATH     the library to use; else $VMALLOC_LIB, else libvmalloc.so beside this\n"
    "               program, else ../lib/libvmalloc.so from it (the installed layout)\n"
    "--version      the version of vmalloc\n"
    "\n"
    "Exit status of vmalloc itself: 2 bad usage, 125 no library or another failure of its\n"
    "own, 126 COMMAND cannot be executed, 127 COMMAND not found.\n";

void vm_cli_usage_error(const char *format, ...) {
  va_list ap;
  va_start(ap, format);
  fputs("vmalloc: ", stderr);
  vfprintf(stderr, format, ap);
  fputc('\n', stderr);
  va_end(ap);
  fputs(usage_text, stderr);
  exit(VM_EXIT_USAGE);
}

/* --help: the usage and what each subcommand and option does, on stdout. */
static _Noreturn void print_help(void) {
  printf("vmalloc %s: run a program on the vmalloc allocator, or compare allocators on it.\n\n"
         "%s%s",
         VM_VERSION, usage_text, help_text);
  exit(0);
}

/* Whether argv[*at] is option `name` with a value, given as `NAME VALUE`, `--long=VALUE` or
 * (short options) `-nVALUE`; on a match, *value is set and *at moved past the value. */
static int option_value(int argc, char **argv, int *at, const char *name, const char **value) {
  const char *arg = argv[*at];
  size_t len = strlen(name);
  if (strncmp(arg, name, len))
    return 0;
  if (arg[len] == '=' && name[1] == '-') {
    *value = arg + len + 1;
  } else if (arg[len] && name[1] != '-') {
    *value = arg + len;
  } else if (!arg[len]) {
    if (*at + 1 >= argc)
      vm_cli_usage_error("%s needs a value", name);
    *value = argv[++*at];
  } else {
    return 0; /* a longer option that starts alike */
  }
  return 1;
}

/* The N of -n: a whole number of runs, 1 to VM_MAX_RUNS; anything else is bad usage. */
static int parse_runs(const char *text) {
  char *end;
  long runs = strtol(text, &end, 10);
  if (end == text || *end || runs < 1 || runs > VM_MAX_RUNS)
    vm_cli_usage_error("-n wants a number of runs from 1 to %d, not '%s'", VM_MAX_RUNS, text);
  return (int)runs;
}

int main(int argc, char **argv) {
  vm_cli_options_t options = {.runs = 3, .svg_path = "vmalloc-compare.svg"};
  const char *value, *subcommand = NULL;
  int at = 1;
  /* Options before the subcommand. */
  for (; at < argc && !subcommand; at++) {
    const char *arg = argv[at];
    if (!strcmp(arg, "--help") || !strcmp(arg, "-h"))
      print_help();
    else if (!strcmp(arg, "--version"))
      return printf("vmalloc %s\n", VM_VERSION) < 0;
    else if (option_value(argc, argv, &at, "--lib", &value))
      options.library = value;
    else if (arg[0] == '-')
      vm_cli_usage_error("unknown option '%s'", arg);
    else
      subcommand = arg;
  }
  if (!subcommand)
    vm_cli_usage_error("no subcommand: give run or compare");
  int is_run = !strcmp(subcommand, "run"), is_compare = !strcmp(subcommand, "compare");
  if (!is_run && !is_compare)
    vm_cli_usage_error("unknown subcommand '%s'", subcommand);

  /* The subcommand's options, up to `--` or the first word that is not one. */
  for (; at < argc; at++) {
    const char *arg = argv[at];
    if (!strcmp(arg, "--")) {
      at++;
      break;
    }
    if (arg[0] != '-')
      break;
    if (!strcmp(arg, "--help") || !strcmp(arg, "-h"))
      print_help();
    else if (option_value(argc, argv, &at, "--lib", &value))
      options.library = value;
    else if (is_run && !strcmp(arg, "--stats"))
      options.stats = 1;
    else if (is_compare && option_value(argc, argv, &at, "-n", &value))
      options.runs = parse_runs(value);
    else if (is_compare && option_value(argc, argv, &at, "--svg", &value)) {
      if (!*value)
        vm_cli_usage_error("--svg needs a file name");
      options.svg_path = value;
    } else
      vm_cli_usage_error("unknown option '%s' for %s", arg, subcommand);
  }
  if (at >= argc)
    vm_cli_usage_error("no command to run: give it after %s --", subcommand);
  options.command = argv + at;
  return is_run ? vm_cli_run(&options) : vm_cli_compare(&options);
}
