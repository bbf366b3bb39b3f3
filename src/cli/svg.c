/* Writing SVG charts as text: the document frame, escaped text, one palette. */
#include "svg.h"

#include <stdarg.h>

void vm_svg_begin(FILE *f, double width, double height) {
  fprintf(f,
          "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
          "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"%.0f\" height=\"%.0f\" "
          "viewBox=\"0 0 %.0f %.0f\" font-family=\"DejaVu Sans, Helvetica, Arial, sans-serif\" "
          "font-size=\"11\">\n<rect width=\"100%%\" height=\"100%%\" fill=\"white\"/>\n",
          width, height, width, height);
}

void vm_svg_end(FILE *f) { fputs("</svg>\n", f); }

/* The length of the well-formed UTF-8 sequence at s, or 0 when it is broken. Overlong
 * forms and surrogates are not rejected: XML parsers accept what they decode to. */
static int utf8_length(const unsigned char *s) {
  int n = s[0] >= 0xf0 && s[0] <= 0xf4 ? 4 : s[0] >= 0xe0 ? 3 : s[0] >= 0xc2 ? 2 : 0;
  for (int i = 1; i < n; i++)
    if ((s[i] & 0xc0) != 0x80)
      return 0;
  return n;
}

void vm_svg_escape(FILE *f, const char *text) {
  for (const unsigned char *p = (const unsigned char *)text; *p;) {
    int n = 1;
    switch (*p) {
    case '<': fputs("&lt;", f); break;
    case '>': fputs("&gt;", f); break;
    case '&': fputs("&amp;", f); break;
    case '"': fputs("&quot;", f); break;
    case '\'': fputs("&apos;", f); break;
    default:
      if (*p < 0x80) {
        fputc(*p < 0x20 || *p == 0x7f ? '?' : *p, f);
      } else if ((n = utf8_length(p)) > 0) {
        fwrite(p, 1, (size_t)n, f);
      } else {
        fputc('?', f);
        n = 1;
      }
    }
    p += n;
  }
}

void vm_svg_text(FILE *f, double x, double y, const char *anchor, const char *attributes,
                 const char *format, ...) {
  char content[512];
  va_list ap;
  va_start(ap, format);
  vsnprintf(content, sizeof content, format, ap);
  va_end(ap);
  fprintf(f, "<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"%s\"%s%s>", x, y, anchor,
          attributes[0] ? " " : "", attributes);
  vm_svg_escape(f, content);
  fputs("</text>\n", f);
}

const char *vm_svg_color(int index) {
  static const char *const palette[] = {"#555555", "#d62728", "#1f77b4", "#2ca02c",
                                        "#9467bd", "#ff7f0e", "#8c564b", "#17becf"};
  return palette[index % (int)(sizeof palette / sizeof palette[0])];
}
