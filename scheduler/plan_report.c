/* plan_report.c — a plan for people (text) and for programs (JSON, schema in docs/plan-format.md):
 * the breakdown by role, each arena's size against its lower bound and naive size, what every
 * packer reached, the total, the budget verdict, the dominant term and what shrinks it, and (with
 * the graph) the largest tensors live at the activation peak. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../base/error.h"
#include "plan.h"
#include "../base/buf.h"

/* ---- a growing string ---- */

static const char *fmt_bytes(uint64_t v, char buf[SM_BYTES_STR_MAX]) { return sm_format_bytes(v, buf, SM_BYTES_STR_MAX); }

static double ratio(uint64_t size, uint64_t bound) { return bound ? (double)size / (double)bound : 1.0; }

/* The tensors live at step s in arena a, largest first (up to max): a running top-k. */
static int live_at(const sm_plan *p, int a, int s, sm_tensor *out, int max)
{
    int n = 0;
    for (int i = 0; i < p->n_tensors; i++) {
        const sm_plan_tensor *t = &p->t[i];
        if (t->arena != a || t->alias != SM_NO_TENSOR || t->first > s || s > t->last) continue;
        int k;
        if (n < max) k = n++;
        else if (t->bytes > p->t[out[max - 1]].bytes) k = max - 1;
        else continue;
        out[k] = i;
        for (; k > 0 && p->t[out[k - 1]].bytes < p->t[out[k]].bytes; k--) {
            sm_tensor tmp = out[k - 1];
            out[k - 1] = out[k];
            out[k] = tmp;
        }
    }
    return n;
}

static const char *layout_name(const sm_plan_arena *ar) { return ar->chosen >= 0 ? sm_packer_name(ar->chosen) : "end-to-end"; }

/* ---- text ---- */

static void text(sm_buf *b, const sm_plan *p, const sm_graph *g, uint64_t budget)
{
    char b1[SM_BYTES_STR_MAX], b2[SM_BYTES_STR_MAX], b3[SM_BYTES_STR_MAX];
    sm_buf_printf(b, "memory plan: %d tensors, %d steps, strategy %s, %d threads, %.3g GFLOP per run, hash %016llx\n",
                 p->n_tensors, p->n_steps, p->opts.strategy == SM_PLAN_NAIVE ? "naive" : "packed", p->n_threads,
                 p->flops / 1e9, (unsigned long long)p->hash);
    sm_buf_printf(b, "  %-16s %12s %12s %6s %12s  %s\n", "role", "size", "lower bound", "ratio", "naive", "layout");
    for (int a = 0; a < SM_ARENA_COUNT; a++) {
        const sm_plan_arena *ar = &p->arena[a];
        sm_buf_printf(b, "  %-16s %12s %12s %6.3f %12s  %s", sm_arena_role_label((sm_arena_id)a), fmt_bytes(ar->size, b1),
                     fmt_bytes(ar->lower_bound, b2), ratio(ar->size, ar->lower_bound), fmt_bytes(ar->naive, b3),
                     layout_name(ar));
        if (a == SM_ARENA_WORK && ar->size)
            sm_buf_printf(b, p->work_shared ? " (%d threads x %s + %s shared)" : " (%d threads x %s)", p->n_threads,
                         fmt_bytes(p->work_per_thread, b1), fmt_bytes(p->work_shared, b2));
        sm_buf_printf(b, "\n");
        if (ar->chosen >= 0) {
            sm_buf_printf(b, "  %-16s", "");
            for (int k = 0; k < SM_PACK_COUNT; k++)
                sm_buf_printf(b, "%s %s %s", k ? "," : "   packers:", sm_packer_name(k), fmt_bytes(ar->packed[k], b1));
            sm_buf_printf(b, "\n");
        }
    }
    uint64_t total = sm_plan_total_bytes(p), est = sm_plan_estimate(p);
    sm_buf_printf(b, "  %-16s %12s (arenas; with SmallMind's tables %s)\n", "total", fmt_bytes(total, b1),
                 fmt_bytes(est, b2));
    if (p->n_inplace) sm_buf_printf(b, "  in-place: %d tensors write over their dying input\n", p->n_inplace);
    const sm_plan_rc *rc = &p->rc;
    char pol[64];
    sm_recompute_str(&p->opts.recompute, pol, sizeof pol);
    if (rc->choice.every)
        sm_buf_printf(b, "recompute %s: every:%d%s, %d of %d block boundaries kept, %d tensors recomputed, +%.3g GFLOP "
                     "(%.1f%% of the run); activations %s without recompute -> %s (%.2fx smaller)\n", pol,
                     rc->choice.every, rc->choice.keep_costly ? " + costly ops' outputs" : "", rc->n_kept,
                     rc->n_boundaries, rc->n_recomputed, rc->extra_flops / 1e9,
                     p->flops > 0 ? 100.0 * rc->extra_flops / p->flops : 0.0, fmt_bytes(rc->act_none, b1),
                     fmt_bytes(p->arena[SM_ARENA_ACT].size, b2), ratio(rc->act_none, p->arena[SM_ARENA_ACT].size));
    else
        sm_buf_printf(b, "recompute %s: nothing recomputed (%d block boundaries)\n", pol, rc->n_boundaries);
    sm_plan_precision_info pi;
    sm_plan_precision(p, &pi);
    sm_buf_printf(b, "precision %s: %d tensors in 16 bits (%s), %d casts; stored:", sm_precision_name(pi.policy),
                 pi.n_half, p->g->loss == SM_NO_TENSOR ? "weights" : "saved activations", pi.n_cast);
    for (int d = 0; d < SM_DTYPE_COUNT; d++)
        if (pi.n_stored[d]) sm_buf_printf(b, " %s %d", sm_dtype_name((sm_dtype)d), pi.n_stored[d]);
    sm_buf_printf(b, "; weights %.2f bytes/param, weights+gradients+optimizer %.2f bytes/param\n", pi.bytes_per_param,
                 pi.state_bytes_per_param);
    sm_buf_printf(b, "passes:\n");
    static const char *pass_names[SM_PASS_COUNT] = {"order", "recompute", "precision", "placement", "lifetimes", "in-place", "offsets"};
    for (int k = 0; k < SM_PASS_COUNT; k++) sm_buf_printf(b, "  %d %-10s %s\n", k + 1, pass_names[k], p->log[k]);
    if (budget) {
        if (est <= budget)
            sm_buf_printf(b, "budget %s: fits (%.1f%% used, %s free)\n", fmt_bytes(budget, b1),
                         100.0 * (double)est / (double)budget, fmt_bytes(budget - est, b2));
        else
            sm_buf_printf(b, "budget %s: does NOT fit (over by %s)\n", fmt_bytes(budget, b1), fmt_bytes(est - budget, b2));
    } else {
        sm_buf_printf(b, "budget: none given\n");
    }
    sm_arena_id d = sm_plan_dominant(p);
    sm_buf_printf(b, "dominant term: %s, %s (%.0f%% of the arenas); to shrink it, %s\n", sm_arena_role_label(d),
                 fmt_bytes(p->arena[d].size, b1), total ? 100.0 * (double)p->arena[d].size / (double)total : 0.0,
                 sm_arena_advice(d));
    if (g && p->arena[SM_ARENA_ACT].lower_bound) {
        sm_tensor top[5];
        int s = p->arena[SM_ARENA_ACT].peak_step, n = live_at(p, SM_ARENA_ACT, s, top, 5);
        const char *node = s < p->n_steps ? g->t[g->nodes[p->order[s]].out].name : "-";
        sm_buf_printf(b, "activation peak at step %d (node '%s'), largest live:", s, node);
        for (int i = 0; i < n; i++) {
            char sh[64];
            sm_buf_printf(b, "%s %s %s %s", i ? "," : "", g->t[top[i]].name, sm_shape_str(&g->t[top[i]], sh, sizeof sh),
                         fmt_bytes(p->t[top[i]].bytes, b1));
        }
        sm_buf_printf(b, "\n");
    }
}

/* ---- JSON ---- */

static void json_str(sm_buf *b, const char *s) { sm_buf_json_string(b, s, strlen(s)); }

static void json(sm_buf *b, const sm_plan *p, const sm_graph *g, uint64_t budget)
{
    uint64_t total = sm_plan_total_bytes(p), est = sm_plan_estimate(p);
    sm_buf_printf(b, "{\n  \"schema\": \"smallmind.plan-report/1\",\n");
    sm_buf_printf(b, "  \"plan_hash\": \"%016llx\",\n  \"graph_hash\": \"%016llx\",\n", (unsigned long long)p->hash,
                 (unsigned long long)p->graph_hash);
    sm_buf_printf(b, "  \"strategy\": \"%s\",\n  \"threads\": %d,\n  \"steps\": %d,\n  \"tensors\": %d,\n  \"inplace\": %d,\n",
                 p->opts.strategy == SM_PLAN_NAIVE ? "naive" : "packed", p->n_threads, p->n_steps, p->n_tensors,
                 p->n_inplace);
    sm_buf_printf(b, "  \"flops\": %.17g,\n", p->flops);
    const sm_plan_rc *rc = &p->rc;
    char pol[64];
    sm_buf_printf(b, "  \"recompute\": {\"policy\": ");
    json_str(b, sm_recompute_str(&p->opts.recompute, pol, sizeof pol));
    sm_buf_printf(b, ", \"every\": %d, \"keep_costly\": %s, \"boundaries\": %d, \"kept\": %d, \"recomputed\": %d, "
                 "\"extra_flops\": %.17g, \"extra_flops_share\": %.6f, \"activations_without\": %llu, "
                 "\"activations\": %llu},\n", rc->choice.every, rc->choice.keep_costly ? "true" : "false", rc->n_boundaries,
                 rc->n_kept, rc->n_recomputed, rc->extra_flops, p->flops > 0 ? rc->extra_flops / p->flops : 0.0,
                 (unsigned long long)(rc->choice.every ? rc->act_none : p->arena[SM_ARENA_ACT].size),
                 (unsigned long long)p->arena[SM_ARENA_ACT].size);
    sm_plan_precision_info pi;
    sm_plan_precision(p, &pi);
    sm_buf_printf(b, "  \"precision\": {\"policy\": \"%s\", \"half\": %d, \"casts\": %d, \"stored\": {",
                 sm_precision_name(pi.policy), pi.n_half, pi.n_cast);
    for (int d = 0; d < SM_DTYPE_COUNT; d++)
        sm_buf_printf(b, "%s\"%s\": %d", d ? ", " : "", sm_dtype_name((sm_dtype)d), pi.n_stored[d]);
    sm_buf_printf(b, "}, \"params\": %llu, \"param_bytes\": %llu, \"bytes_per_param\": %.6f, "
                 "\"state_bytes_per_param\": %.6f},\n", (unsigned long long)pi.n_params,
                 (unsigned long long)pi.param_bytes, pi.bytes_per_param, pi.state_bytes_per_param);
    sm_buf_printf(b, "  \"passes\": [");
    for (int k = 0; k < SM_PASS_COUNT; k++) {
        sm_buf_printf(b, "%s", k ? ", " : "");
        json_str(b, p->log[k]);
    }
    sm_buf_printf(b, "],\n  \"arenas\": [\n");
    for (int a = 0; a < SM_ARENA_COUNT; a++) {
        const sm_plan_arena *ar = &p->arena[a];
        sm_buf_printf(b, "    {\"name\": \"%s\", \"role\": \"%s\", \"size\": %llu, \"lower_bound\": %llu, \"ratio\": %.6f, "
                     "\"naive\": %llu, \"peak_step\": %d, \"layout\": \"%s\", \"packers\": {",
                     sm_arena_name((sm_arena_id)a), sm_arena_role_label((sm_arena_id)a), (unsigned long long)ar->size,
                     (unsigned long long)ar->lower_bound, ratio(ar->size, ar->lower_bound), (unsigned long long)ar->naive,
                     ar->peak_step, layout_name(ar));
        for (int k = 0; ar->chosen >= 0 && k < SM_PACK_COUNT; k++)
            sm_buf_printf(b, "%s\"%s\": %llu", k ? ", " : "", sm_packer_name(k), (unsigned long long)ar->packed[k]);
        sm_buf_printf(b, "}}%s\n", a + 1 < SM_ARENA_COUNT ? "," : "");
    }
    sm_buf_printf(b, "  ],\n  \"work_per_thread\": %llu,\n  \"work_shared\": %llu,\n",
                 (unsigned long long)p->work_per_thread, (unsigned long long)p->work_shared);
    sm_buf_printf(b, "  \"total\": %llu,\n  \"estimate\": %llu,\n", (unsigned long long)total, (unsigned long long)est);
    if (budget) sm_buf_printf(b, "  \"budget\": %llu,\n  \"fits\": %s,\n", (unsigned long long)budget, est <= budget ? "true" : "false");
    else sm_buf_printf(b, "  \"budget\": null,\n  \"fits\": null,\n");
    sm_arena_id d = sm_plan_dominant(p);
    sm_buf_printf(b, "  \"dominant\": {\"arena\": \"%s\", \"role\": \"%s\", \"bytes\": %llu, \"share\": %.6f, \"advice\": ",
                 sm_arena_name(d), sm_arena_role_label(d), (unsigned long long)p->arena[d].size,
                 total ? (double)p->arena[d].size / (double)total : 0.0);
    json_str(b, sm_arena_advice(d));
    sm_buf_printf(b, "}");
    if (g && p->arena[SM_ARENA_ACT].lower_bound) {
        sm_tensor top[5];
        int s = p->arena[SM_ARENA_ACT].peak_step, n = live_at(p, SM_ARENA_ACT, s, top, 5);
        sm_buf_printf(b, ",\n  \"activation_peak\": {\"step\": %d, \"node\": ", s);
        json_str(b, s < p->n_steps ? g->t[g->nodes[p->order[s]].out].name : "");
        sm_buf_printf(b, ", \"largest\": [");
        for (int i = 0; i < n; i++) {
            const sm_tensor_rec *r = &g->t[top[i]];
            sm_buf_printf(b, "%s{\"name\": ", i ? ", " : "");
            json_str(b, r->name);
            sm_buf_printf(b, ", \"shape\": [");
            for (int k = 0; k < r->ndim; k++) sm_buf_printf(b, "%s%lld", k ? ", " : "", (long long)r->ne[k]);
            sm_buf_printf(b, "], \"bytes\": %llu}", (unsigned long long)p->t[top[i]].bytes);
        }
        sm_buf_printf(b, "]}");
    }
    sm_buf_printf(b, "\n}\n");
}

sm_status sm_plan_report(const sm_plan *p, const sm_graph *g, sm_report_format f, uint64_t budget, char **out)
{
    if (!p || !out) return sm_error(SM_ERR_INVALID_ARG, "sm_plan_report: NULL plan or out");
    if (f != SM_REPORT_TEXT && f != SM_REPORT_JSON)
        return sm_error(SM_ERR_INVALID_ARG, "sm_plan_report: unknown format %d (text or JSON)", (int)f);
    if (g) {
        sm_status s = sm_plan_check_graph(p, g);
        if (s) return sm_error_prefix(s, "sm_plan_report: ");
        g = p->g;   /* names of recompute clones too */
    }
    sm_buf b = {0};
    if (f == SM_REPORT_TEXT) text(&b, p, g, budget);
    else json(&b, p, g, budget);
    if (b.failed) {
        free(b.data);
        return sm_error(SM_ERR_NOMEM, "plan report: out of memory");
    }
    *out = b.data;
    return SM_OK;
}
