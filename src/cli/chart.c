/* The chart of `vmalloc compare`: the process tree's RSS over time, one line per allocator,
 * each its run of median wall time, so the lines compare typical runs. */
#include "compare.h"
#include "svg.h"

#include <string.h>

/* The layout, in SVG units: the plot area, with the legend to its right. */
static const double chart_width = 900, chart_height = 520;
static const double plot_left = 72, plot_right = 720, plot_top = 84, plot_bottom = 470;
/* More points than the plot is wide only bloat the file: beyond this many, a line keeps the
 * highest point of each stretch, so that peaks survive. */
enum { MAX_POINTS_DRAWN = 1200 };

/* A round step (1, 2 or 5 times a power of ten) that cuts [0, span] into about `ticks`. */
static double tick_step(double span, int ticks) {
  double raw = span / ticks, power = 1;
  while (power * 10 <= raw)
    power *= 10;
  while (power > raw)
    power /= 10;
  return raw <= power ? power : raw <= 2 * power ? 2 * power : raw <= 5 * power ? 5 * power
                                                                                : 10 * power;
}

/* The axis end: the first multiple of step at or above the largest value. */
static double axis_end(double largest, double step) {
  long steps = (long)(largest / step);
  if ((double)steps * step < largest || steps == 0)
    steps++;
  return (double)steps * step;
}

/* The gridlines and numbers of both axes, and their titles. */
static void draw_axes(FILE *f, double x_end, double x_step, double y_end, double y_step) {
  double width = plot_right - plot_left, height = plot_bottom - plot_top;
  for (int i = 0; (double)i * y_step <= y_end * 1.0000001; i++) {
    double y = plot_bottom - (double)i * y_step / y_end * height;
    fprintf(f, "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"%s\"/>\n",
            plot_left, y, plot_right, y, i ? "#e3e3e3" : "#333333");
    vm_svg_text(f, plot_left - 6, y + 4, "end", "fill=\"#444\"", "%g", (double)i * y_step);
  }
  for (int i = 0; (double)i * x_step <= x_end * 1.0000001; i++) {
    double x = plot_left + (double)i * x_step / x_end * width;
    fprintf(f, "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"%s\"/>\n", x,
            plot_top, x, plot_bottom, i ? "#e3e3e3" : "#333333");
    vm_svg_text(f, x, plot_bottom + 16, "middle", "fill=\"#444\"", "%g", (double)i * x_step);
  }
  vm_svg_text(f, (plot_left + plot_right) / 2, plot_bottom + 36, "middle", "",
              "time since the program started (s)");
  char rotate[64];
  snprintf(rotate, sizeof rotate, "transform=\"rotate(-90 18 %.1f)\"",
           (plot_top + plot_bottom) / 2);
  vm_svg_text(f, 18, (plot_top + plot_bottom) / 2, "middle", rotate,
              "resident memory of the process tree (MiB)");
}

/* One allocator's line: a polyline through its charted run, dashed if that run failed. */
static void draw_line(FILE *f, const vm_allocator_t *a, int index, double x_end, double y_end) {
  const vm_run_t *run = a->charted;
  double width = plot_right - plot_left, height = plot_bottom - plot_top;
  fprintf(f, "<polyline fill=\"none\" stroke=\"%s\" stroke-width=\"1.6\"%s points=\"",
          vm_svg_color(index), a->failure ? " stroke-dasharray=\"5 3\"" : "");
  size_t count = run ? run->point_count : 0;
  size_t stretch = (count + MAX_POINTS_DRAWN - 1) / MAX_POINTS_DRAWN;
  for (size_t start = 0; start < count; start += stretch) {
    const vm_rss_point_t *highest = &run->points[start];
    for (size_t i = start; i < start + stretch && i < count; i++)
      if (run->points[i].rss_mib > highest->rss_mib)
        highest = &run->points[i];
    fprintf(f, "%s%.1f,%.1f", start ? " " : "", plot_left + highest->seconds / x_end * width,
            plot_bottom - highest->rss_mib / y_end * height);
  }
  fprintf(f, "\"><title>");
  vm_svg_escape(f, a->name);
  fprintf(f, "</title></polyline>\n");
}

/* The legend, right of the plot: each allocator's colour, name and peak. */
static void draw_legend(FILE *f, const vm_allocator_t *allocators, int count) {
  double x = plot_right + 18, y = plot_top + 6;
  vm_svg_text(f, x, y, "start", "font-weight=\"bold\"", "allocator, peak RSS");
  for (int i = 0; i < count; i++) {
    const vm_allocator_t *a = &allocators[i];
    y += 20;
    fprintf(f, "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"%s\" "
               "stroke-width=\"3\"%s/>\n",
            x, y - 4, x + 22, y - 4, vm_svg_color(i),
            a->failure ? " stroke-dasharray=\"5 3\"" : "");
    if (a->failure)
      vm_svg_text(f, x + 28, y, "start", "", "%s: FAIL", a->name);
    else
      vm_svg_text(f, x + 28, y, "start", "", "%s, %.1f MiB", a->name, a->peak_mib);
  }
}

int vm_chart_write(FILE *f, const vm_allocator_t *allocators, int count, const char *command,
                   int runs_each) {
  double x_largest = 0.01, y_largest = 1;
  for (int i = 0; i < count; i++) {
    const vm_run_t *run = allocators[i].charted;
    for (size_t p = 0; run && p < run->point_count; p++) {
      if (run->points[p].seconds > x_largest)
        x_largest = run->points[p].seconds;
      if (run->points[p].rss_mib > y_largest)
        y_largest = run->points[p].rss_mib;
    }
  }
  double x_step = tick_step(x_largest, 8), y_step = tick_step(y_largest, 6);
  double x_end = axis_end(x_largest, x_step), y_end = axis_end(y_largest, y_step);

  vm_svg_begin(f, chart_width, chart_height);
  vm_svg_text(f, 16, 26, "start", "font-size=\"16\" font-weight=\"bold\"",
              "Resident memory over time, by allocator");
  /* The command, cut to what fits on the line. */
  size_t len = strlen(command);
  vm_svg_text(f, 16, 46, "start", "font-family=\"DejaVu Sans Mono, monospace\"", "%.120s%s",
              command, len > 120 ? "..." : "");
  if (runs_each == 1)
    vm_svg_text(f, 16, 64, "start", "fill=\"#444\"",
                "One run per allocator; RSS of the program and all it started, sampled every "
                "10 ms. Dashed: a run that failed.");
  else
    vm_svg_text(f, 16, 64, "start", "fill=\"#444\"",
                "Each line: the allocator's run of median wall time of %d; RSS of the program "
                "and all it started, sampled every 10 ms. Dashed: a run that failed.",
                runs_each);
  draw_axes(f, x_end, x_step, y_end, y_step);
  for (int i = 0; i < count; i++)
    draw_line(f, &allocators[i], i, x_end, y_end);
  draw_legend(f, allocators, count);
  vm_svg_end(f);
  return ferror(f) ? -1 : 0;
}
