/* cmd_fit.c — `smallmind fit`: the largest context (and batch) whose real plan fits a budget. It
 * answers by re-planning, not from a formula: a binary search over T (then over B), each probe a
 * fresh graph and plan (nothing large is allocated). Plan sizes grow with T and B, so the search
 * is exact for the planner's answers.
 *
 * The budget is the whole process's, as `train` checks it: what the process holds besides its plans
 * (the program itself, measured; the training data, --data) comes off the top, and in training mode
 * so does the validation model's plan (train's default; --val-every 0 leaves it out). */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include <omp.h>

#include "plan_cli.h"

#define T_MAX (1 << 24)
#define B_MAX (1 << 20)

static void help(void)
{
    printf("usage: smallmind fit [MODEL] --budget BYTES|auto [--train|--infer] [-B N] [-T N] [--threads N]\n"
           "                     [--strategy naive|packed] [--recompute POLICY] [--data FILE] [--val-every N]\n"
           "                     [--json]\n"
           "  The largest sequence length T that fits the budget at batch B, and the largest batch B at\n"
           "  sequence length T, found by planning the real graph (binary search), with the settings assumed.\n"
           "  The budget is the whole process's: this program's own memory is counted, and with --train the\n"
           "  validation model `train` builds too.\n");
    printf(sm_plan_cli_help(), omp_get_max_threads());
    printf("  --data FILE        count the training data train will hold (4 bytes per byte of FILE at most)\n"
           "  --val-every N      as train's: 0 = no validation model (with --train)\n"
           "  --json             the answer as JSON\n  models: %s\n", sm_cli_templates_help());
}

/* What the process holds besides the plan searched over. */
typedef struct extras {
    uint64_t process;     /* resident now: the program and its libraries */
    uint64_t data;        /* the training data's tokens (--data) */
    bool validation;      /* train's validation model is planned and counted too (training only) */
} extras;

typedef struct probe {
    int probes;
    sm_status err;        /* a failure other than "does not fit" stops the search */
    uint64_t estimate;    /* of the last plan that fit */
    uint64_t validation;  /* the validation model's plan at that size */
    sm_arena_id dominant;
    char recompute[96];   /* what the recompute pass applied in that plan */
} probe;

/* The plan of train's validation model at o's B and T: the forward with its loss, nothing to
 * recompute. 0 with pr->err set on failure. */
static uint64_t validation_plan(sm_plan_cli o, probe *pr)
{
    o.spec.training = false;
    o.spec.inference = false;
    o.po.recompute = (sm_recompute_policy){0};
    o.po.precision = SM_PRECISION_FP32;   /* train's validation model keeps f32 weights */
    sm_model m;
    sm_plan *p;
    pr->err = sm_plan_cli_build(&o, &m, &p);
    if (pr->err) return 0;
    uint64_t est = sm_plan_estimate(p);
    sm_plan_free(p);
    sm_model_free(&m);
    return est;
}

/* Does the model at (B, T) fit, with the extras? */
static bool fits(sm_plan_cli o, int B, int T, const extras *x, probe *pr)
{
    o.spec.batch = B;
    o.spec.seq = T;
    pr->probes++;
    uint64_t val = x->validation ? validation_plan(o, pr) : 0, held = x->process + x->data + val;
    if (pr->err || held >= o.budget) return false;
    o.budget -= held;   /* what the plan may take (and what recompute auto aims at) */
    sm_model m;
    sm_plan *p;
    sm_status s = sm_plan_cli_build(&o, &m, &p);
    if (s == SM_ERR_BUDGET) return false;   /* a recompute budget no policy reaches: does not fit */
    if (s) {
        pr->err = s;
        return false;
    }
    bool ok = sm_plan_can_fit(p, o.budget);
    if (ok) {
        pr->estimate = sm_plan_estimate(p);
        pr->validation = val;
        pr->dominant = sm_plan_dominant(p);
        sm_plan_recompute_info ri;
        sm_plan_recompute(p, &ri);
        if (ri.kind == SM_RECOMPUTE_NONE) snprintf(pr->recompute, sizeof pr->recompute, "nothing recomputed");
        else snprintf(pr->recompute, sizeof pr->recompute, "every:%d%s, +%.1f%% FLOPs", ri.every,
                      ri.kind == SM_RECOMPUTE_SELECTIVE ? " + costly outputs (selective)" : "",
                      ri.flops > 0 ? 100.0 * ri.extra_flops / ri.flops : 0.0);
    }
    sm_plan_free(p);
    sm_model_free(&m);
    return ok;
}

/* Largest x in [1, max] with ok(x), assuming ok is monotone; 0 if even 1 does not fit. */
static int search(sm_plan_cli *o, const extras *ex, int fixed, bool over_t, int max, probe *pr)
{
    int B = over_t ? fixed : 0, T = over_t ? 0 : fixed;
#define OK(x) fits(*o, over_t ? B : (x), over_t ? (x) : T, ex, pr)
    if (!OK(1)) return pr->err ? -1 : 0;
    int lo = 1, hi;   /* lo fits; double until something does not */
    for (;;) {
        if (lo == max) return lo;
        int next = lo > max / 2 ? max : lo * 2;
        if (OK(next)) {
            lo = next;
            continue;
        }
        if (pr->err) return -1;
        hi = next;
        break;
    }
    while (hi - lo > 1 && !pr->err) {   /* invariant: lo fits, hi does not */
        int mid = lo + (hi - lo) / 2;
        if (OK(mid)) lo = mid;
        else hi = mid;
    }
#undef OK
    return pr->err ? -1 : lo;
}

int sm_cmd_fit(int argc, char **argv)
{
    const char *cmd = "fit";
    sm_plan_cli o = {.spec = {.name = "gpt", .inference = true, .loss_scale = SM_CLI_LOSS_SCALE_AUTO}};   /* as train */
    sm_plan_options_default(&o.po);
    bool have_budget = false;
    extras ex = {.process = sm_cli_rss(), .validation = true};
    const char *data = NULL;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *val = i + 1 < argc ? argv[i + 1] : NULL;
        long long v;
        int r = sm_plan_cli_option(cmd, &o, argc, argv, &i);
        if (r < 0) return 2;
        if (r > 0) {
            have_budget |= !strcmp(a, "--budget");
            continue;
        }
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) return help(), 0;
        else if (!strcmp(a, "--json")) o.json = true;
        else if (!strcmp(a, "--data")) {
            if (!val) {
                fprintf(stderr, "smallmind %s: --data needs a file\n", cmd);
                return 2;
            }
            data = argv[++i];
        }
        else if (!strcmp(a, "--val-every")) {
            if (!sm_cli_int(cmd, a, val, 0, 1 << 30, &v)) return 2;
            ex.validation = v > 0;
            i++;
        }
        else if (a[0] == '-') {
            fprintf(stderr, "smallmind %s: unknown option '%s' (see --help)\n", cmd, a);
            return 2;
        } else {
            o.spec.name = a;
        }
    }
    if (!have_budget) {
        fprintf(stderr, "smallmind %s: give a budget: --budget 8G, or --budget auto for this machine\n", cmd);
        return 2;
    }
    if (sm_plan_cli_resolve_budget(cmd, &o)) return 1;
    if (data) {
        /* train holds 4 bytes per token and a token is at least one byte, with any tokenizer */
        struct stat st;
        if (stat(data, &st) != 0) return sm_cli_fail(cmd, "--data %s: %s", data, strerror(errno));
        if (!S_ISREG(st.st_mode)) return sm_cli_fail(cmd, "--data %s is not a regular file", data);
        ex.data = (uint64_t)st.st_size * sizeof(int32_t);
    }
    ex.validation &= o.spec.training;

    /* the model's own B and T, for the search that holds one of them */
    sm_model m;
    sm_plan_cli base = o;
    base.po.budget = 0;
    if (sm_model_load(&base.spec, &m)) return sm_cli_fail(cmd, "%s", sm_last_error());
    sm_gpt_config c = m.gpt;
    sm_model_free(&m);
    int B = c.batch, T = c.seq;

    double t0 = omp_get_wtime();
    probe pt = {0}, pb = {0};
    int best_t = search(&o, &ex, B, true, T_MAX, &pt);
    if (best_t < 0) return sm_cli_fail(cmd, "%s", sm_last_error());
    int best_b = search(&o, &ex, T, false, B_MAX, &pb);
    if (best_b < 0) return sm_cli_fail(cmd, "%s", sm_last_error());
    double ms = (omp_get_wtime() - t0) * 1e3;

    char bb[SM_BYTES_STR_MAX], eb[SM_BYTES_STR_MAX], fb[SM_BYTES_STR_MAX];
    sm_format_bytes(o.budget, bb, sizeof bb);
    int threads = o.po.n_threads ? o.po.n_threads : omp_get_max_threads();
    const char *strategy = o.po.strategy == SM_PLAN_NAIVE ? "naive" : "packed";
    int64_t rec = sm_recommended_context(o.budget);
    char rpol[64];
    sm_recompute_str(&o.po.recompute, rpol, sizeof rpol);
    if (o.json) {
        printf("{\"model\": %s, \"mode\": \"%s\", \"budget\": %llu, \"budget_source\": \"%s\", \"threads\": %d, "
               "\"strategy\": \"%s\", \"precision\": \"%s\", \"process\": %llu, \"data\": %llu,\n"
               " \"largest_seq\": {\"batch\": %d, \"seq\": %d, \"estimate\": %llu, \"validation\": %llu},\n"
               " \"largest_batch\": {\"seq\": %d, \"batch\": %d, \"estimate\": %llu, \"validation\": %llu},\n"
               " \"recommended_context\": %lld, \"plans\": %d, \"ms\": %.1f, \"recompute\": \"%s\", "
               "\"recompute_applied\": \"%s\"}\n",
               sm_plan_cli_json_name(o.spec.name), sm_plan_cli_mode(&o), (unsigned long long)o.budget, o.budget_auto ? "auto" : "given",
               threads, strategy, sm_precision_name(o.po.precision), (unsigned long long)ex.process, (unsigned long long)ex.data, B, best_t,
               (unsigned long long)(best_t ? pt.estimate : 0), (unsigned long long)(best_t ? pt.validation : 0), T, best_b,
               (unsigned long long)(best_b ? pb.estimate : 0), (unsigned long long)(best_b ? pb.validation : 0),
               (long long)rec, pt.probes + pb.probes, ms, rpol, best_t ? pt.recompute : "");
        return best_t && best_b ? 0 : 1;
    }
    printf("fit %s into %s%s: %s, %s plan, %d threads, precision %s\n", o.spec.name, bb,
           o.budget_auto ? " (auto: the smallest of RAM, available RAM and the container limit)" : "",
           sm_plan_cli_mode(&o), strategy, threads, sm_precision_name(o.po.precision));
    printf("  model: L=%d C=%d H=%d V=%d; learned positions, so the position table grows with T\n", c.n_layer,
           c.n_embd, c.n_head, c.vocab);
    char xb[2][SM_BYTES_STR_MAX], vb[SM_BYTES_STR_MAX];
    printf("  counted besides the plan: this process %s, training data %s%s\n",
           sm_format_bytes(ex.process, xb[0], sizeof xb[0]), sm_format_bytes(ex.data, xb[1], sizeof xb[1]),
           ex.validation ? ", train's validation model (--val-every 0 leaves it out)" : "");
    if (best_t)
        printf("  largest T at B=%d: %d tokens (plan %s%s%s; largest term: %s; recompute %s: %s)\n", B, best_t,
               sm_format_bytes(pt.estimate, eb, sizeof eb), ex.validation ? ", validation model " : "",
               ex.validation ? sm_format_bytes(pt.validation, vb, sizeof vb) : "", sm_arena_role_label(pt.dominant),
               rpol, pt.recompute);
    else
        printf("  at B=%d not even T=1 fits\n", B);
    if (best_b)
        printf("  largest B at T=%d: %d sequences (plan %s%s%s)\n", T, best_b, sm_format_bytes(pb.estimate, fb, sizeof fb),
               ex.validation ? ", validation model " : "",
               ex.validation ? sm_format_bytes(pb.validation, vb, sizeof vb) : "");
    else
        printf("  at T=%d not even B=1 fits\n", T);
    printf("  (answered from %d real plans in %.0f ms; the documented rule of thumb for this budget would say a\n"
           "   context of %lld tokens: docs/memory.md)\n", pt.probes + pb.probes, ms, (long long)rec);
    if (!best_t || !best_b) {
        sm_plan_cli one = o;
        one.spec.batch = 1;
        one.spec.seq = 1;
        sm_plan *p;
        if (!sm_plan_cli_build(&one, &m, &p)) {
            sm_arena_id d = sm_plan_dominant(p);
            printf("  at B=1 T=1 the plan needs %s, mostly %s: %s\n", sm_format_bytes(sm_plan_estimate(p), eb, sizeof eb),
                   sm_arena_role_label(d), sm_arena_advice(d));
            sm_plan_free(p);
            sm_model_free(&m);
        }
        return 1;
    }
    return 0;
}
