/* plan_svg.c — the activation arena as a picture: time (steps) across, offset up, one rectangle
 * per tensor with storage of its own (hover for name, shape, bytes and span). A dashed line marks
 * the lower bound, so the gap between it and the top is the room a better packing could win. */
#include <stdio.h>
#include <stdlib.h>

#include "../base/error.h"
#include "plan.h"
#include "../base/atomic_file.h"
#include "../base/buf.h"

#define W 1200.0
#define H 600.0
#define LEFT 90.0
#define TOP 40.0
#define BOTTOM 50.0

static void esc(sm_buf *b, const char *s)
{
    for (; *s; s++) {
        if (*s == '<') sm_buf_printf(b, "&lt;");
        else if (*s == '>') sm_buf_printf(b, "&gt;");
        else if (*s == '&') sm_buf_printf(b, "&amp;");
        else if (*s == '"') sm_buf_printf(b, "&quot;");
        else sm_buf_printf(b, "%c", *s);
    }
}

sm_status sm_plan_write_svg(const sm_plan *p, const sm_graph *g, const char *path)
{
    if (!p || !g || !path) return sm_error(SM_ERR_INVALID_ARG, "sm_plan_write_svg: NULL plan, graph or path");
    sm_status st = sm_plan_check_graph(p, g);
    if (st) return sm_error_prefix(st, "sm_plan_write_svg: ");
    g = p->g;
    const sm_plan_arena *ar = &p->arena[SM_ARENA_ACT];
    double steps = p->n_steps ? p->n_steps : 1, size = ar->size ? (double)ar->size : 1;
    double pw = W - LEFT - 20, ph = H - TOP - BOTTOM;
    char b1[SM_BYTES_STR_MAX], b2[SM_BYTES_STR_MAX];
    sm_buf b = {0};
    sm_buf_printf(&b, "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"%.0f\" height=\"%.0f\" font-family=\"sans-serif\" "
                 "font-size=\"12\">\n<rect width=\"100%%\" height=\"100%%\" fill=\"white\"/>\n", W, H);
    sm_buf_printf(&b, "<text x=\"%.0f\" y=\"20\" font-size=\"14\">activation arena: %s (lower bound %s, ratio %.3f, "
                 "layout %s), %d steps</text>\n", LEFT, sm_format_bytes(ar->size, b1, sizeof b1),
                 sm_format_bytes(ar->lower_bound, b2, sizeof b2), ar->lower_bound ? size / (double)ar->lower_bound : 1.0,
                 ar->chosen >= 0 ? sm_packer_name(ar->chosen) : "end-to-end", p->n_steps);
    sm_buf_printf(&b, "<defs><pattern id=\"rc\" width=\"6\" height=\"6\" patternUnits=\"userSpaceOnUse\" "
                 "patternTransform=\"rotate(45)\"><path d=\"M0,0h6v6h-6z\" fill=\"#f3b0b0\"/><path d=\"M0,0h3v6h-3z\" "
                 "fill=\"#c83232\"/></pattern></defs>\n");
    sm_buf_printf(&b, "<rect x=\"%.1f\" y=\"%.1f\" width=\"%.1f\" height=\"%.1f\" fill=\"#f4f4f4\" stroke=\"#888\"/>\n",
                 LEFT, TOP, pw, ph);
    if (p->rc.choice.every)
        sm_buf_printf(&b, "<text x=\"%.0f\" y=\"38\" fill=\"#c83232\">striped red: recomputed (%d tensors, every:%d%s)"
                     "</text>\n", LEFT, p->rc.n_recomputed, p->rc.choice.every, p->rc.choice.keep_costly ? " + costly" : "");
    for (int i = 0; i < p->n_tensors; i++) {
        const sm_plan_tensor *t = &p->t[i];
        if (t->arena != SM_ARENA_ACT || t->alias != SM_NO_TENSOR) continue;
        const sm_tensor_rec *r = &g->t[i];
        double x = LEFT + pw * t->first / steps, w = pw * (t->last - t->first + 1) / steps;
        double h = ph * (double)sm_plan_align(t->bytes) / size, y = TOP + ph - ph * (double)t->offset / size - h;
        /* hue from the name's id spreads neighbours apart; inputs and outputs get their own colours */
        const char *fill = r->role == SM_ROLE_INPUT ? "#9e9e9e" : r->is_output ? "#e0823d" : NULL;
        /* recomputed ranges: the clones, striped red */
        bool clone = p->src && p->src[i] != SM_NO_TENSOR;
        if (clone) fill = "url(#rc)";
        char hsl[40];
        if (!fill) {
            snprintf(hsl, sizeof hsl, "hsl(%d,55%%,62%%)", (i * 137) % 360);
            fill = hsl;
        }
        char sh[64];
        sm_buf_printf(&b, "<rect x=\"%.2f\" y=\"%.2f\" width=\"%.2f\" height=\"%.2f\" fill=\"%s\" stroke=\"#333\" "
                     "stroke-width=\"0.3\"><title>", x, y, w > 0.3 ? w : 0.3, h > 0.3 ? h : 0.3, fill);
        esc(&b, r->name);
        sm_buf_printf(&b, "%s %s %s, offset %llu, steps %d-%d</title></rect>\n", clone ? " (recomputed)" : "",
                     sm_shape_str(r, sh, sizeof sh),
                     sm_format_bytes(t->bytes, b1, sizeof b1), (unsigned long long)t->offset, t->first, t->last);
    }
    double yb = TOP + ph - ph * (double)ar->lower_bound / size;
    sm_buf_printf(&b, "<line x1=\"%.1f\" y1=\"%.2f\" x2=\"%.1f\" y2=\"%.2f\" stroke=\"#c00\" stroke-dasharray=\"6,4\"/>\n"
                 "<text x=\"%.1f\" y=\"%.2f\" fill=\"#c00\" text-anchor=\"end\">bound</text>\n", LEFT, yb, LEFT + pw, yb,
                 LEFT - 4, yb + 4);
    for (int k = 0; k <= 4; k++) {
        double y = TOP + ph - ph * k / 4.0;
        sm_buf_printf(&b, "<text x=\"%.1f\" y=\"%.2f\" text-anchor=\"end\">%s</text>\n", LEFT - 4, y + 4,
                     sm_format_bytes((uint64_t)(size * k / 4.0), b1, sizeof b1));
        double x = LEFT + pw * k / 4.0;
        sm_buf_printf(&b, "<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"middle\">%d</text>\n", x, TOP + ph + 16,
                     (int)(steps * k / 4.0));
    }
    sm_buf_printf(&b, "<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"middle\">step</text>\n</svg>\n", LEFT + pw / 2,
                 TOP + ph + 36);
    sm_status s = b.failed ? sm_error(SM_ERR_NOMEM, "plan picture: out of memory") : sm_file_write_atomic(path, (const void *[]){b.data}, (size_t[]){b.len}, 1);
    free(b.data);
    return s;
}
