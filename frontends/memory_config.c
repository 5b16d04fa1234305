/* memory_config.c — the memory configuration in one place (sm_memory_config_get): the machine, the
 * budget, the recommended context and its window/stride, and the policies a plan is made with, read
 * from the plan itself; and its text and JSON forms, which sysinfo and plan print. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../base/error.h"
#include "../base/buf.h"
#include "smallmind.h"

/* What a plan stores and recomputes, read from the plan's lowered graph and its recompute record. */
static sm_status read_plan(const sm_plan *p, sm_memory_config *c)
{
    sm_plan_recompute_info ri;
    sm_status st = sm_plan_recompute(p, &ri);
    if (st) return st;
    c->recompute = ri.asked;
    c->recompute_applied = ri.kind;
    c->recompute_every = ri.every;
    sm_plan_precision_info pi;
    if ((st = sm_plan_precision(p, &pi))) return st;
    c->precision = pi.policy;
    const sm_graph *g = sm_plan_graph(p);
    for (sm_tensor t = 0; t < sm_graph_tensor_count(g); t++) {
        sm_dtype dt;
        sm_role role;
        if ((st = sm_tensor_info(g, t, NULL, &dt, &role, NULL, NULL))) return st;
        if (dt != SM_I32) c->n_stored[dt]++;
        c->n_kv += role == SM_ROLE_KV;
    }
    sm_plan_arena_info kv;
    if ((st = sm_plan_arena_stats(p, SM_ARENA_KV, &kv))) return st;
    c->kv_bytes = kv.size;
    c->plan_estimate = sm_plan_estimate(p);
    c->from_plan = 1;
    return SM_OK;
}

sm_status sm_memory_config_get(const sm_plan *plan, uint64_t budget, sm_memory_config *out)
{
    if (!out) return sm_error(SM_ERR_INVALID_ARG, "sm_memory_config_get: out is NULL");
    memset(out, 0, sizeof *out);
    sm_status st = sm_sysinfo_get(&out->sys);
    if (st) return st;
    out->budget_given = budget != 0;
    out->budget = budget ? budget : out->sys.budget_auto;
    out->context = sm_recommended_context(out->budget);
    sm_windows_default(out->context, &out->window, &out->stride);
    if (plan) return read_plan(plan, out);
    /* No plan: what sm_plan_options_default gives every plan (recompute none; precision fp32, which
     * stores every tensor as f32; every arena in RAM). */
    sm_plan_options po;
    sm_plan_options_default(&po);
    out->recompute = po.recompute;
    out->recompute_applied = po.recompute.kind;
    out->precision = po.precision;
    return SM_OK;
}

/* "fp32: f32 (120 tensors)" or "bf16: f32 (120 tensors), bf16 (24 tensors)": the policy and the
 * storage types in use. */
static void precision_str(const sm_memory_config *c, char *buf, size_t cap)
{
    size_t n = (size_t)snprintf(buf, cap, "%s: ", sm_precision_name(c->precision));
    for (int d = 0; d < SM_DTYPE_COUNT && n < cap; d++)
        if (c->n_stored[d])
            n += (size_t)snprintf(buf + n, cap - n, "%s%s (%d tensors)", buf[n - 2] == ':' ? "" : ", ",
                                  sm_dtype_name((sm_dtype)d), c->n_stored[d]);
    if (!c->from_plan) snprintf(buf, cap, "fp32: f32 (every tensor; --precision bf16 or fp16 stores the activations a "
                                "training step saves, or an inference model's weights, in 16 bits)");
}

static const char *applied_str(const sm_memory_config *c, char *buf, size_t cap)
{
    if (c->recompute_applied == SM_RECOMPUTE_EVERY) snprintf(buf, cap, "every:%d", c->recompute_every);
    else snprintf(buf, cap, "%s", c->recompute_applied == SM_RECOMPUTE_SELECTIVE ? "selective" : "none");
    return buf;
}

sm_status sm_memory_config_report(const sm_memory_config *c, sm_report_format f, char **out)
{
    if (!c || !out) return sm_error(SM_ERR_INVALID_ARG, "sm_memory_config_report: c or out is NULL");
    *out = NULL;
    char b[5][SM_BYTES_STR_MAX], asked[64], applied[32], prec[160];
    const sm_sysinfo *s = &c->sys;
    sm_recompute_str(&c->recompute, asked, sizeof asked);
    applied_str(c, applied, sizeof applied);
    precision_str(c, prec, sizeof prec);
    const char *source = c->from_plan ? "this plan's" : "a default plan's";
    sm_buf j;
    sm_buf_init(&j);
    if (f == SM_REPORT_JSON) {
        sm_buf_printf(&j, "{\"ram\": %llu, \"available\": %llu, \"cgroup_limit\": %llu, \"budget\": %llu, "
                           "\"budget_given\": %s, \"recommended_context\": %lld, \"window\": %lld, \"stride\": %lld, "
                           "\"from_plan\": %s, \"recompute\": \"%s\", \"recompute_applied\": \"%s\", \"precision_policy\": \"%s\", "
                           "\"precision\": \"",
                           (unsigned long long)s->total, (unsigned long long)s->available,
                           (unsigned long long)s->cgroup_limit, (unsigned long long)c->budget,
                           c->budget_given ? "true" : "false", (long long)c->context, (long long)c->window,
                           (long long)c->stride, c->from_plan ? "true" : "false", asked, applied,
                           sm_precision_name(c->precision));
        int first = 1;   /* the storage types in use, "f32" or "f32+f16" */
        for (int d = 0; d < SM_DTYPE_COUNT; d++)
            if (c->n_stored[d] || (!c->from_plan && d == SM_F32)) {
                sm_buf_printf(&j, "%s%s", first ? "" : "+", sm_dtype_name((sm_dtype)d));
                first = 0;
            }
        sm_buf_printf(&j, "\", \"kv_placement\": \"ram\", \"kv_tensors\": %d, \"kv_bytes\": %llu, "
                           "\"plan_estimate\": %llu}", c->n_kv, (unsigned long long)c->kv_bytes,
                           (unsigned long long)c->plan_estimate);
    } else {
        sm_buf_printf(&j, "memory      %s RAM, %s available\n", sm_format_bytes(s->total, b[0], sizeof b[0]),
                           s->available ? sm_format_bytes(s->available, b[1], sizeof b[1]) : "unknown");
        if (s->cgroup_limit)
            sm_buf_printf(&j, "container   limit %s (cgroup v%d)\n",
                               sm_format_bytes(s->cgroup_limit, b[2], sizeof b[2]), s->cgroup_version);
        else
            sm_buf_printf(&j, "container   no memory limit found\n");
        sm_buf_printf(&j, "budget %s %s (%s)\n", c->budget_given ? "    " : "auto",
                           sm_format_bytes(c->budget, b[3], sizeof b[3]),
                           c->budget_given ? "given" : "the smallest of the above");
        sm_buf_printf(&j, "context     %lld tokens recommended for that budget (a rule of thumb, docs/memory.md; "
                           "`smallmind fit` answers from real plans)\n", (long long)c->context);
        sm_buf_printf(&j, "windows     window %lld, stride %lld for that context (W = max(2048, context/8), "
                           "S = W/2)\n", (long long)c->window, (long long)c->stride);
        sm_buf_printf(&j, "recompute   %s, applied as %s (%s)\n", asked, applied, source);
        sm_buf_printf(&j, "precision   %s (%s)\n", prec, source);
        /* the runtime allocates every arena, the KV cache's included, as anonymous memory (runtime.c) */
        sm_buf_printf(&j, "KV cache    in RAM, %d tensors, %s (%s)\n", c->n_kv,
                           sm_format_bytes(c->kv_bytes, b[4], sizeof b[4]), source);
    }
    if (j.failed || !j.data) {
        sm_buf_free(&j);
        return sm_error(SM_ERR_NOMEM, "memory configuration: out of memory for the report");
    }
    *out = j.data;
    return SM_OK;
}
