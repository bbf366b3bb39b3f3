/* Writing SVG charts as text: the document frame, escaped text, one palette. Shared by the
 * vmalloc command and bench/runner.c, so their charts look alike and are always well-formed. */
#ifndef VM_CLI_SVG_H
#define VM_CLI_SVG_H

#include <stdio.h>

/* The XML declaration, the <svg> root sized width x height, a white background. */
void vm_svg_begin(FILE *f, double width, double height);

/* Closes the root. */
void vm_svg_end(FILE *f);

/* Writes text so that it is valid XML in content and in a quoted attribute: markup
 * characters become entities, and bytes XML forbids (control characters, broken UTF-8,
 * as a command line may hold) become '?'. */
void vm_svg_escape(FILE *f, const char *text);

/* A <text> element at (x, y); `anchor` is start, middle or end; `attributes` is extra
 * markup for the element (e.g. `font-weight="bold"`, or ""); the content is printf-formatted
 * and escaped. */
void vm_svg_text(FILE *f, double x, double y, const char *anchor, const char *attributes,
                 const char *format, ...) __attribute__((format(printf, 6, 7)));

/* The colour of series `index`: grey for the first (glibc, the reference), then seven
 * distinct hues, repeating. */
const char *vm_svg_color(int index);

#endif
