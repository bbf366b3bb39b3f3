/* Checks that a file is a well-formed XML document with an <svg> root, without needing any
 * XML library (the test has python3's parser only where python3 is installed):
 *
 *     svg_check FILE [ELEMENT]
 *
 * Well-formed here means: valid UTF-8 with no control character XML forbids; tags that nest
 * and close in order; one root element; attribute values quoted; '<' only as markup; every
 * '&' starting a known entity or a character reference; no attribute given twice. Prints the
 * number of ELEMENT elements (when asked) and exits 0, or prints the first fault and exits 1. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum { MAX_DEPTH = 64, MAX_NAME = 64, MAX_ATTRIBUTES = 32 };

static const char *file_name;
static const char *text, *at; /* the document and the reading position */

static _Noreturn void fault(const char *what) {
  int line = 1;
  for (const char *p = text; p < at; p++)
    line += *p == '\n';
  fprintf(stderr, "svg_check: %s:%d: %s\n", file_name, line, what);
  exit(1);
}

/* Valid UTF-8 throughout, and no C0 control character but tab, newline and return. */
static void check_characters(size_t size) {
  for (at = text; at < text + size;) {
    unsigned char c = (unsigned char)*at;
    int n = c < 0x80 ? 1 : c >= 0xc2 && c <= 0xdf ? 2 : c >= 0xe0 && c <= 0xef ? 3
          : c >= 0xf0 && c <= 0xf4 ? 4 : 0;
    if (n == 0)
      fault("a byte that starts no UTF-8 character");
    if (c < 0x20 && c != '\t' && c != '\n' && c != '\r')
      fault("a control character XML forbids");
    if (c == 0x7f)
      fault("a DEL character");
    for (int i = 1; i < n; i++)
      if (at + i >= text + size || ((unsigned char)at[i] & 0xc0) != 0x80)
        fault("a broken UTF-8 sequence");
    at += n;
  }
  at = text;
}

static int is_name_start(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' || c == ':';
}

static int is_name_char(char c) {
  return is_name_start(c) || (c >= '0' && c <= '9') || c == '-' || c == '.';
}

static void skip_space(void) {
  while (*at == ' ' || *at == '\t' || *at == '\n' || *at == '\r')
    at++;
}

static void read_name(char *name) {
  if (!is_name_start(*at))
    fault("a name expected");
  size_t n = 0;
  while (is_name_char(*at)) {
    if (n + 1 == MAX_NAME)
      fault("a name too long");
    name[n++] = *at++;
  }
  name[n] = 0;
}

/* An entity or character reference, at '&'. */
static void read_reference(void) {
  static const char *const entities[] = {"&lt;", "&gt;", "&amp;", "&quot;", "&apos;"};
  for (size_t i = 0; i < sizeof entities / sizeof entities[0]; i++)
    if (!strncmp(at, entities[i], strlen(entities[i]))) {
      at += strlen(entities[i]);
      return;
    }
  if (at[1] == '#') {
    const char *p = at + 2;
    int hex = *p == 'x';
    p += hex;
    const char *digits = p;
    while (hex ? strchr("0123456789abcdefABCDEF", *p) && *p : *p >= '0' && *p <= '9')
      p++;
    if (p > digits && *p == ';') {
      at = p + 1;
      return;
    }
  }
  fault("an '&' that starts no reference");
}

/* Character data up to the next '<'. */
static void read_text(int outside_root) {
  while (*at && *at != '<') {
    if (*at == '&')
      read_reference();
    else if (outside_root && !strchr(" \t\r\n", *at))
      fault("text outside the root element");
    else
      at++;
  }
}

/* Skips a comment or processing instruction at '<!--' or '<?'. */
static void skip_special(void) {
  const char *end = at[1] == '?' ? strstr(at, "?>") : strstr(at, "-->");
  if (!end)
    fault("an unclosed comment or processing instruction");
  at = end + (at[1] == '?' ? 2 : 3);
}

/* A start tag, at '<'; returns whether it closed itself ("/>"). */
static int read_start_tag(char *name) {
  char seen[MAX_ATTRIBUTES][MAX_NAME];
  int count = 0;
  at++;
  read_name(name);
  for (;;) {
    int spaced = *at == ' ' || *at == '\t' || *at == '\n' || *at == '\r';
    skip_space();
    if (*at == '>') {
      at++;
      return 0;
    }
    if (at[0] == '/' && at[1] == '>') {
      at += 2;
      return 1;
    }
    if (!spaced)
      fault("attributes must be separated by space");
    if (count == MAX_ATTRIBUTES)
      fault("too many attributes");
    read_name(seen[count]);
    for (int i = 0; i < count; i++)
      if (!strcmp(seen[i], seen[count]))
        fault("an attribute given twice");
    count++;
    skip_space();
    if (*at++ != '=')
      fault("an attribute without '='");
    skip_space();
    char quote = *at++;
    if (quote != '"' && quote != '\'')
      fault("an attribute value without quotes");
    while (*at != quote) {
      if (!*at || *at == '<')
        fault("an attribute value holding '<' or not closed");
      if (*at == '&')
        read_reference();
      else
        at++;
    }
    at++;
  }
}

int main(int argc, char **argv) {
  if (argc < 2 || argc > 3) {
    fprintf(stderr, "usage: svg_check FILE [ELEMENT]\n");
    return 2;
  }
  file_name = argv[1];
  FILE *f = fopen(file_name, "rb");
  if (!f) {
    perror(file_name);
    return 1;
  }
  static char buffer[16 << 20];
  size_t size = fread(buffer, 1, sizeof buffer - 1, f);
  fclose(f);
  if (memchr(buffer, 0, size))
    fault("a NUL byte");
  text = buffer;
  check_characters(size);

  char stack[MAX_DEPTH][MAX_NAME], name[MAX_NAME];
  int depth = 0, roots = 0;
  long counted = 0;
  while (*at) {
    read_text(depth == 0);
    if (!*at)
      break;
    if (at[1] == '?' || !strncmp(at, "<!--", 4)) {
      skip_special();
    } else if (at[1] == '/') {
      at += 2;
      read_name(name);
      skip_space();
      if (*at++ != '>')
        fault("a bad end tag");
      if (depth == 0 || strcmp(stack[depth - 1], name))
        fault("an end tag that closes no open element of its name");
      depth--;
    } else {
      if (depth == 0 && roots++)
        fault("a second root element");
      int closed = read_start_tag(name);
      if (depth == 0 && strcmp(name, "svg"))
        fault("the root element is not <svg>");
      if (argc == 3 && !strcmp(name, argv[2]))
        counted++;
      if (!closed) {
        if (depth == MAX_DEPTH)
          fault("elements nested too deep");
        strcpy(stack[depth++], name);
      }
    }
  }
  if (depth)
    fault("elements left open at the end");
  if (!roots)
    fault("no root element");
  if (argc == 3)
    printf("%ld\n", counted);
  return 0;
}
