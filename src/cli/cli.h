/* The vmalloc command: what its files share. main.c reads the command line into a
 * vm_cli_options_t and hands it to one subcommand. */
#ifndef VM_CLI_H
#define VM_CLI_H

#include <stddef.h>

/* Exit statuses of the command's own failures, apart from those of the program it runs:
 * bad usage as in most tools, and 125 for "vmalloc itself failed" as env, nice and timeout do
 * (126 and 127 are the shell's "cannot execute" and "not found"). */
enum { VM_EXIT_USAGE = 2, VM_EXIT_OWN_FAILURE = 125, VM_EXIT_CANNOT_EXECUTE = 126,
       VM_EXIT_NOT_FOUND = 127 };

/* The most runs per allocator `compare -n` takes. */
enum { VM_MAX_RUNS = 1000 };

typedef struct {
  const char *library;  /* --lib, or NULL */
  int stats;            /* run --stats */
  int runs;             /* compare -n */
  const char *svg_path; /* compare --svg */
  char **command;       /* the program and its arguments, NULL-terminated */
} vm_cli_options_t;

/* main.c: prints "vmalloc: <message>" and the short usage to stderr, exits 2. */
_Noreturn void vm_cli_usage_error(const char *format, ...) __attribute__((format(printf, 1, 2)));

/* locate.c: the absolute path of libvmalloc.so, from --lib (`given`), else VMALLOC_LIB,
 * else beside this program, else in ../lib from it (the installed layout). Returns 0, or
 * prints why it found none and returns -1. */
int vm_cli_find_library(const char *given, char *path, size_t cap);

/* locate.c: whether `name` can be executed, looked up in PATH as execvp does; prints why
 * not and returns the shell's exit status for it (126 or 127), or returns 0. */
int vm_cli_check_program(const char *name);

/* run.c: `vmalloc run`; returns only on failure, with the exit status to give. */
int vm_cli_run(const vm_cli_options_t *options);

/* compare.c: `vmalloc compare`; returns the exit status. */
int vm_cli_compare(const vm_cli_options_t *options);

#endif
