/* Options: values from the environment, bounds, and a bad value that warns and keeps the
 * default. */
#include "unit.h"

#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* Runs vm_options_init with stderr captured into buf. */
static void init_capturing_stderr(char *buf, size_t size) {
  int pipe_fds[2];
  assert_int_equal(pipe(pipe_fds), 0);
  int saved = dup(2);
  dup2(pipe_fds[1], 2);
  vm_options_init();
  dup2(saved, 2);
  close(saved);
  close(pipe_fds[1]);
  ssize_t n = read(pipe_fds[0], buf, size - 1);
  buf[n > 0 ? n : 0] = '\0';
  close(pipe_fds[0]);
}

static void values_come_from_the_environment(void **state) {
  (void)state;
  char out[512];
  setenv("VMALLOC_SEGMENT_CACHE", "3", 1);
  setenv("VMALLOC_VERBOSE", "yes", 1);
  init_capturing_stderr(out, sizeof out);
  assert_string_equal(out, "");
  assert_int_equal(vm_option(VM_OPTION_SEGMENT_CACHE), 3);
  assert_int_equal(vm_option(VM_OPTION_VERBOSE), 1);
  unsetenv("VMALLOC_VERBOSE");
  vm_option_set(VM_OPTION_VERBOSE, 0);
}

static void a_bad_value_warns_and_keeps_the_default(void **state) {
  (void)state;
  char out[512];
  vm_option_set(VM_OPTION_SEGMENT_CACHE, 8);
  setenv("VMALLOC_SEGMENT_CACHE", "lots", 1);
  init_capturing_stderr(out, sizeof out);
  assert_non_null(strstr(out, "VMALLOC_SEGMENT_CACHE=lots"));
  assert_int_equal(vm_option(VM_OPTION_SEGMENT_CACHE), 8);
  setenv("VMALLOC_SEGMENT_CACHE", "99999999", 1);
  init_capturing_stderr(out, sizeof out);
  assert_non_null(strstr(out, "VMALLOC_SEGMENT_CACHE=99999999"));
  assert_int_equal(vm_option(VM_OPTION_SEGMENT_CACHE), 8);
  unsetenv("VMALLOC_SEGMENT_CACHE");
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
      cmocka_unit_test(a_bad_value_warns_and_keeps_the_default),
      cmocka_unit_test(set_clamps_to_bounds),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
