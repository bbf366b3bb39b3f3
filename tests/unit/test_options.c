/* Options: values from the environment (words, numbers, text), bounds, a bad value that
 * warns and keeps the default, and a set-id process that ignores its environment. The
 * environment is given to vm_options_init as a list, as init.c gives it `environ`. */
#include "unit.h"

#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* Runs fn with stderr captured into buf. */
static void capture_stderr(char *buf, size_t size, void (*fn)(void *), void *arg) {
  int pipe_fds[2];
  assert_int_equal(pipe(pipe_fds), 0);
  int saved = dup(2);
  dup2(pipe_fds[1], 2);
  fn(arg);
  dup2(saved, 2);
  close(saved);
  close(pipe_fds[1]);
  ssize_t n = read(pipe_fds[0], buf, size - 1);
  buf[n > 0 ? n : 0] = '\0';
  close(pipe_fds[0]);
}

static void init_from(void *environment) { vm_options_init(environment, false); }

/* vm_options_init over the given environment, stderr captured into out. */
static void init_capturing_stderr(char **environment, char *out, size_t size) {
  capture_stderr(out, size, init_from, environment);
}

/* The number of lines in text. */
static int lines(const char *text) {
  int n = 0;
  for (; *text != '\0'; text++)
    n += *text == '\n';
  return n;
}

static void values_come_from_the_environment(void **state) {
  (void)state;
  char out[512];
  char *env[] = {"HOME=/root", "VMALLOC_SEGMENT_CACHE=3", "VMALLOC_VERBOSE=yes",
                 "VMALLOC_ON_ERROR=warn", "VMALLOC_CHECKX=3", NULL};
  init_capturing_stderr(env, out, sizeof out);
  assert_string_equal(out, "");
  assert_int_equal(vm_option(VM_OPTION_SEGMENT_CACHE), 3);
  assert_int_equal(vm_option(VM_OPTION_VERBOSE), 1);
  assert_int_equal(vm_option(VM_OPTION_ON_ERROR), VM_ON_ERROR_WARN);
  assert_int_equal(vm_option(VM_OPTION_CHECK), 1); /* VMALLOC_CHECKX is another name */
  vm_option_set(VM_OPTION_SEGMENT_CACHE, 8);
  vm_option_set(VM_OPTION_VERBOSE, 0);
  vm_option_set(VM_OPTION_ON_ERROR, 0);
}

static void stats_takes_words_and_numbers(void **state) {
  (void)state;
  static const struct {
    const char *assignment;
    long value;
  } cases[] = {{"VMALLOC_STATS=text", 1}, {"VMALLOC_STATS=JSON", VM_STATS_JSON},
               {"VMALLOC_STATS=off", 0},  {"VMALLOC_STATS=1", 1},
               {"VMALLOC_STATS=on", 1},   {"VMALLOC_STATS=2", VM_STATS_JSON}};
  char out[512];
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    vm_option_set(VM_OPTION_STATS, 0);
    char *env[] = {(char *)cases[i].assignment, NULL};
    init_capturing_stderr(env, out, sizeof out);
    assert_string_equal(out, "");
    assert_int_equal(vm_option(VM_OPTION_STATS), cases[i].value);
  }
  vm_option_set(VM_OPTION_STATS, 0);
}

static void a_bad_value_warns_and_keeps_the_default(void **state) {
  (void)state;
  char out[512];
  char *lots[] = {"VMALLOC_SEGMENT_CACHE=lots", NULL};
  init_capturing_stderr(lots, out, sizeof out);
  assert_string_equal(out, "vmalloc: ignoring VMALLOC_SEGMENT_CACHE=lots (expected 0..4096); "
                           "keeping 8\n");
  assert_int_equal(vm_option(VM_OPTION_SEGMENT_CACHE), 8);
  char *big[] = {"VMALLOC_SEGMENT_CACHE=99999999", NULL};
  init_capturing_stderr(big, out, sizeof out);
  assert_non_null(strstr(out, "VMALLOC_SEGMENT_CACHE=99999999"));
  assert_int_equal(lines(out), 1);
  assert_int_equal(vm_option(VM_OPTION_SEGMENT_CACHE), 8);
  char *loud[] = {"VMALLOC_STATS=loud", NULL};
  init_capturing_stderr(loud, out, sizeof out);
  assert_string_equal(out, "vmalloc: ignoring VMALLOC_STATS=loud (expected off|text|json or "
                           "0..2); keeping off\n");
  assert_int_equal(vm_option(VM_OPTION_STATS), 0);
}

static void a_text_option_keeps_its_own_copy(void **state) {
  (void)state;
  char out[512];
  char assignment[] = "VMALLOC_STATS_FILE=/tmp/report-%p.txt";
  char *env[] = {assignment, NULL};
  assert_string_equal(vm_option_text(VM_OPTION_STATS_FILE), "");
  init_capturing_stderr(env, out, sizeof out);
  assert_string_equal(out, "");
  memset(assignment, 'x', sizeof assignment - 1); /* the program changes its environment */
  assert_string_equal(vm_option_text(VM_OPTION_STATS_FILE), "/tmp/report-%p.txt");
}

static void a_set_id_process_ignores_the_environment(void **state) {
  (void)state;
  char *env[] = {"VMALLOC_SEGMENT_CACHE=5", "VMALLOC_STATS=json", "VMALLOC_STATS_FILE=/etc/x",
                 "MALLOC_MMAP_THRESHOLD_=262144", "VMALLOC_CHECK=bad", NULL};
  const char *file_before = vm_option_text(VM_OPTION_STATS_FILE);
  vm_options_init(env, true);
  assert_int_equal(vm_option(VM_OPTION_SEGMENT_CACHE), 8);
  assert_int_equal(vm_option(VM_OPTION_STATS), 0);
  assert_string_equal(vm_option_text(VM_OPTION_STATS_FILE), file_before);
  assert_int_equal(vm_option(VM_OPTION_MMAP_THRESHOLD), 1 << 20);
  /* the same environment, not set-id: read */
  char out[512];
  init_capturing_stderr(env, out, sizeof out);
  assert_int_equal(vm_option(VM_OPTION_SEGMENT_CACHE), 5);
  assert_int_equal(vm_option(VM_OPTION_MMAP_THRESHOLD), 262144);
  assert_string_equal(vm_option_text(VM_OPTION_STATS_FILE), "/etc/x");
  assert_int_equal(lines(out), 1); /* VMALLOC_CHECK=bad */
  vm_option_set(VM_OPTION_SEGMENT_CACHE, 8);
  vm_option_set(VM_OPTION_STATS, 0);
  vm_option_set(VM_OPTION_MMAP_THRESHOLD, 1 << 20);
}

static void print_options(void *fd) { vm_options_print(*(int *)fd); }

static void printed_options_show_words(void **state) {
  (void)state;
  char out[4096];
  int fd = 2;
  capture_stderr(out, sizeof out, print_options, &fd);
  assert_int_equal(lines(out), VM_OPTION_COUNT);
  assert_non_null(strstr(out, "vmalloc: VMALLOC_STATS=off  ("));
  assert_non_null(strstr(out, "vmalloc: VMALLOC_ON_ERROR=abort  ("));
  assert_non_null(strstr(out, "vmalloc: VMALLOC_SEGMENT_CACHE=8  ("));
}

static void set_clamps_to_bounds(void **state) {
  (void)state;
  vm_option_set(VM_OPTION_SEGMENT_CACHE, -5);
  assert_int_equal(vm_option(VM_OPTION_SEGMENT_CACHE), 0);
  vm_option_set(VM_OPTION_SEGMENT_CACHE, 8);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(values_come_from_the_environment),
      cmocka_unit_test(stats_takes_words_and_numbers),
      cmocka_unit_test(a_bad_value_warns_and_keeps_the_default),
      cmocka_unit_test(a_text_option_keeps_its_own_copy),
      cmocka_unit_test(a_set_id_process_ignores_the_environment),
      cmocka_unit_test(printed_options_show_words),
      cmocka_unit_test(set_clamps_to_bounds),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
