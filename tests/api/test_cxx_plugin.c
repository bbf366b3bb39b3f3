/* A C program (no C++ runtime at start-up) that loads a C++ plugin with dlopen, in the
 * plugin's own scope: the plugin's operator new is vmalloc's, and when it finds no memory
 * it still calls the new-handler and throws std::bad_alloc, through the C++ runtime that
 * came with the plugin: the shared libstdc++, or (the second plugin) a copy linked into
 * the plugin itself. */
#include <dlfcn.h>
#include <limits.h>
#include <malloc.h>
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "vmalloc.h"

static void *plugin;

/* The plugins sit in build/tests/plugins, beside this program's directory. */
static int load(const char *name) {
  char path[PATH_MAX];
  ssize_t length = readlink("/proc/self/exe", path, sizeof path - 64);
  if (length <= 0)
    return -1;
  path[length] = '\0';
  snprintf(strrchr(path, '/'), 64, "/../plugins/%s", name);
  plugin = dlopen(path, RTLD_NOW | RTLD_LOCAL);
  if (plugin == NULL)
    fprintf(stderr, "dlopen: %s\n", dlerror());
  return plugin != NULL ? 0 : -1;
}
static int load_plugin(void **state) {
  (void)state;
  return load("libnew_plugin.so");
}
static int load_plugin_with_own_runtime(void **state) {
  (void)state;
  return load("libnew_plugin-own-runtime.so");
}

static void *plugin_function(const char *name) {
  void *function = dlsym(plugin, name);
  assert_non_null(function);
  return function;
}

static void test_started_without_libstdcxx(void **state) {
  (void)state;
  /* else the test would not test the late load */
  assert_null(dlsym(RTLD_DEFAULT, "_ZSt15get_new_handlerv"));
}

static void test_plugin_new_is_vmalloc(void **state) {
  (void)state;
  void *(*operator_new)(void) = (void *(*)(void))plugin_function("plugin_operator_new");
  assert_ptr_equal(operator_new(), dlsym(RTLD_DEFAULT, "_Znwm"));
  Dl_info info;
  assert_int_not_equal(dladdr(operator_new(), &info), 0);
  assert_non_null(strstr(info.dli_fname, "libvmalloc"));
  /* and its blocks are ordinary blocks */
  void *(*new_block)(size_t) = (void *(*)(size_t))plugin_function("plugin_new_block");
  char *block = new_block(100);
  assert_true(malloc_usable_size(block) >= 100);
  memset(block, 7, 100);
  free(block);
}

static void test_plugin_new_throws_bad_alloc(void **state) {
  (void)state;
  int (*throws)(void) = (int (*)(void))plugin_function("plugin_new_throws_bad_alloc");
  assert_int_equal(throws(), 1);
}

static void test_plugin_new_calls_new_handler(void **state) {
  (void)state;
  int (*calls)(void) = (int (*)(void))plugin_function("plugin_new_handler_calls");
  assert_int_equal(calls(), 2);
}

int main(void) {
  const struct CMUnitTest shared_runtime[] = {
      cmocka_unit_test(test_started_without_libstdcxx),
      cmocka_unit_test(test_plugin_new_is_vmalloc),
      cmocka_unit_test(test_plugin_new_throws_bad_alloc),
      cmocka_unit_test(test_plugin_new_calls_new_handler),
  };
  const struct CMUnitTest own_runtime[] = {
      cmocka_unit_test(test_plugin_new_is_vmalloc),
      cmocka_unit_test(test_plugin_new_throws_bad_alloc),
      cmocka_unit_test(test_plugin_new_calls_new_handler),
  };
  return cmocka_run_group_tests(shared_runtime, load_plugin, NULL) |
         cmocka_run_group_tests(own_runtime, load_plugin_with_own_runtime, NULL);
}
