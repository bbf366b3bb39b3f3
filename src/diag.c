/* The only writer to stderr. Formats into a stack buffer and write(2)s: no stdio, no
 * allocation, so it is safe anywhere inside the allocator. */
#include "internal.h"

#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

void vm_diag_write(int fd, const char *s, size_t len) {
  while (len > 0) {
    ssize_t n = write(fd, s, len);
    if (n <= 0)
      return;
    s += n;
    len -= (size_t)n;
  }
}

typedef struct {
  char *buf;
  size_t size, len;
} out_t;

static void put(out_t *out, char c) {
  if (out->len + 1 < out->size)
    out->buf[out->len] = c;
  out->len++;
}

static void put_unsigned(out_t *out, unsigned long long v, unsigned base) {
  char digits[24];
  int n = 0;
  do {
    digits[n++] = "0123456789abcdef"[v % base];
    v /= base;
  } while (v != 0);
  while (n > 0)
    put(out, digits[--n]);
}

int vm_diag_vformat(char *buf, size_t size, const char *fmt, va_list ap) {
  out_t out = {buf, size, 0};
  for (const char *f = fmt; *f != '\0'; f++) {
    if (*f != '%') {
      put(&out, *f);
      continue;
    }
    f++;
    bool is_long = false, is_size = false;
    if (*f == 'z') {
      is_size = true;
      f++;
    } else if (*f == 'l') {
      is_long = true;
      f++;
    }
    long long sv;
    switch (*f) {
    case 's': {
      const char *s = va_arg(ap, const char *);
      for (s = s != NULL ? s : "(null)"; *s != '\0'; s++)
        put(&out, *s);
      break;
    }
    case 'd':
      sv = is_size ? (long long)va_arg(ap, ssize_t)
                   : is_long ? va_arg(ap, long) : va_arg(ap, int);
      if (sv < 0) {
        put(&out, '-');
        put_unsigned(&out, (unsigned long long)(-(sv + 1)) + 1, 10);
      } else {
        put_unsigned(&out, (unsigned long long)sv, 10);
      }
      break;
    case 'u':
    case 'x':
      put_unsigned(&out,
                   is_size   ? va_arg(ap, size_t)
                   : is_long ? va_arg(ap, unsigned long)
                             : va_arg(ap, unsigned),
                   *f == 'x' ? 16 : 10);
      break;
    case 'p':
      put(&out, '0');
      put(&out, 'x');
      put_unsigned(&out, (uintptr_t)va_arg(ap, void *), 16);
      break;
    case '%':
      put(&out, '%');
      break;
    default:
      put(&out, '%');
      put(&out, *f);
      break;
    }
  }
  if (size > 0)
    buf[out.len < size ? out.len : size - 1] = '\0';
  return (int)(out.len < size ? out.len : (size > 0 ? size - 1 : 0));
}

int vm_diag_format(char *buf, size_t size, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  int n = vm_diag_vformat(buf, size, fmt, ap);
  va_end(ap);
  return n;
}

void vm_diag_warn(const char *fmt, ...) {
  char line[512];
  va_list ap;
  va_start(ap, fmt);
  int n = vm_diag_vformat(line, sizeof line, fmt, ap);
  va_end(ap);
  vm_diag_write(2, line, (size_t)n);
}

/* Heap misuse: one line naming the error and the address ("vmalloc: " fmt), then abort,
 * or with VMALLOC_ON_ERROR=warn return so the caller can leak the block and go on. */
void vm_diag_misuse(const char *fmt, ...) {
  char line[512];
  int n = vm_diag_format(line, sizeof line, "vmalloc: ");
  va_list ap;
  va_start(ap, fmt);
  n += vm_diag_vformat(line + n, sizeof line - (size_t)n - 1, fmt, ap);
  va_end(ap);
  line[n++] = '\n';
  vm_diag_write(2, line, (size_t)n);
  vm_init_process(); /* the options, if misuse comes before any allocation */
  if (vm_option(VM_OPTION_ON_ERROR) != VM_ON_ERROR_WARN)
    abort();
}

void vm_diag_assert_failed(const char *expr, const char *file, int line) {
  vm_diag_warn("vmalloc: internal check failed: %s at %s:%d\n", expr, file, line);
  abort();
}
