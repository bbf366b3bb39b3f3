/* The allocation-free formatter behind every message vmalloc prints. */
#include "unit.h"

#include <string.h>
#include <sys/types.h>

static void formats_every_conversion(void **state) {
  (void)state;
  char buf[128];
  int n = vm_diag_format(buf, sizeof buf, "%s|%d|%u|%zu|%zd|%ld|%x|%p|%%", "ab", -42, 42u,
                         (size_t)123456789012, (ssize_t)-7, -9000000000L, 255u, (void *)0x1f);
  assert_string_equal(buf, "ab|-42|42|123456789012|-7|-9000000000|ff|0x1f|%");
  assert_int_equal(n, (int)strlen(buf));
}

static void truncates_safely(void **state) {
  (void)state;
  char buf[8];
  int n = vm_diag_format(buf, sizeof buf, "%s", "0123456789");
  assert_string_equal(buf, "0123456");
  assert_int_equal(n, 7);
  n = vm_diag_format(buf, sizeof buf, "%d", INT32_MIN);
  assert_string_equal(buf, "-214748");
}

static void null_string_is_printed_as_null(void **state) {
  (void)state;
  char buf[16];
  vm_diag_format(buf, sizeof buf, "%s", (const char *)NULL);
  assert_string_equal(buf, "(null)");
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(formats_every_conversion),
      cmocka_unit_test(truncates_safely),
      cmocka_unit_test(null_string_is_printed_as_null),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
