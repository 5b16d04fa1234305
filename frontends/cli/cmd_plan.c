/* cmd_plan.c — `smallmind plan`: a dry run. Builds the model's graph and its memory plan, allocates
 * nothing large, and prints where every byte would go: the breakdown by role, each arena against its
 * lower bound, the total, the budget verdict, the dominant term and the option that shrinks it; at its
 * head, the memory configuration (sm_memory_config) the plan was made in. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <omp.h>

#include "dist.h"
#include "plan_cli.h"

static void help(void)
{
    printf("usage: smallmind plan [MODEL] [--train|--infer] [-B N] [-T N] [--budget BYTES|auto] [--json]\n"
           "                      [--svg FILE] [--save FILE] [--strategy naive|packed] [--threads N]\n"
           "                      [--recompute POLICY] [--precision fp32|bf16|fp16] [--ranks N]\n"
           "  A dry run: builds MODEL's graph and memory plan and prints the bytes each role takes\n"
           "  (weights, gradients, optimizer state, activations, KV cache, workspace), each arena's size\n"
           "  against its lower bound (max bytes live at one step), the total and whether it fits the\n"
           "  budget. Nothing large is allocated. Exit status 1 when the plan does not fit the budget.\n");
    printf(sm_plan_cli_help(), omp_get_max_threads());
    printf("  --ranks N          one rank of `mpirun -np N smallmind train`: plans B/N of the batch B and\n"
           "                     adds the gradient exchange's receive buffer (outside the arenas) to the total\n"
           "  --json             the report as JSON (schema: docs/plan-format.md)\n"
           "  --decode           (a template, inference) plan the KV-cached decode step instead: one new\n"
           "                     token per run attending over a KV cache of T positions (the KV arena)\n"
           "  --window W         with --decode: windowed attention over the last W tokens and a ring cache\n"
           "                     of W rows (+ --sink S attention-sink rows): memory flat in T\n"
           "  --svg FILE         draw the activation arena (time across, offset up) into FILE\n"
           "  --save FILE        write the plan itself to FILE (reused by runs of the same graph)\n"
           "  models: %s\n", sm_cli_templates_help());
}

/* Replaces the model's full-window graph and plan by its decode instance: one new token at a time
 * attending over a KV cache of T positions (linear), or of W (+ sink) rows (a ring, windowed
 * attention); the context grows to T where T is beyond it (learned positions for every position).
 * One sequence (B = 1) unless -B is given. */
static sm_status plan_decode(const sm_plan_cli *o, int window, int sink, sm_model *m, sm_plan **plan)
{
    sm_gpt_config c = m->gpt;
    if (c.context < c.seq) c.context = c.seq;
    c.with_loss = 0;
    c.batch = o->spec.batch ? o->spec.batch : 1;   /* one sequence unless -B says more */
    c.span = window;
    c.kv_ring = window > 0;
    c.kv_sink = sink;
    c.kv_positions = window > 0 ? sink + window : c.seq;
    c.seq = 1;
    sm_graph *g;
    sm_plan *p;
    sm_status s = sm_graph_create(&g);
    if (!s) s = sm_gpt_build(g, &c, &m->io);
    if (!s) s = sm_plan_create(g, &o->po, &p);
    if (s) {
        sm_graph_free(g);
        return s;
    }
    sm_plan_free(*plan);
    sm_graph_free(m->g);
    m->g = g;
    *plan = p;
    c.seq = c.kv_positions;   /* what the report's T says: the positions the cache holds */
    m->gpt = c;
    return SM_OK;
}

int sm_cmd_plan(int argc, char **argv)
{
    const char *cmd = "plan";
    sm_plan_cli o = {.spec = {.name = "gpt", .inference = true, .loss_scale = SM_CLI_LOSS_SCALE_AUTO}};   /* as train */
    long long ranks = 1, window = 0, sink = 0;
    bool decode = false;
    sm_plan_options_default(&o.po);
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *val = i + 1 < argc ? argv[i + 1] : NULL;
        int r = sm_plan_cli_option(cmd, &o, argc, argv, &i);
        if (r < 0) return 2;
        if (r > 0) continue;
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) return help(), 0;
        else if (!strcmp(a, "--json")) o.json = true;
        else if (!strcmp(a, "--decode")) decode = true;
        else if (!strcmp(a, "--window") || !strcmp(a, "--sink")) {
            if (!sm_cli_int(cmd, a, val, a[2] == 'w' ? 1 : 0, 1 << 30, a[2] == 'w' ? &window : &sink)) return 2;
            i++;
        }
        else if (!strcmp(a, "--ranks")) {
            if (!sm_cli_int(cmd, a, val, 1, 1 << 20, &ranks)) return 2;
            i++;
        }
        else if (!strcmp(a, "--svg") || !strcmp(a, "--save")) {
            if (!val) {
                fprintf(stderr, "smallmind %s: %s needs a file name\n", cmd, a);
                return 2;
            }
            *(!strcmp(a, "--svg") ? &o.svg : &o.save) = val;
            i++;
        } else if (a[0] == '-') {
            fprintf(stderr, "smallmind %s: unknown option '%s' (see --help)\n", cmd, a);
            return 2;
        } else {
            o.spec.name = a;
        }
    }
    if (sm_plan_cli_resolve_budget(cmd, &o)) return 1;

    sm_model m;
    sm_plan *plan;
    double t0 = omp_get_wtime();
    if (ranks > 1 && !o.spec.training)
        return sm_cli_fail(cmd, "--ranks is for data-parallel training: add --train");
    if ((window || sink) && !decode) return sm_cli_fail(cmd, "--window and --sink go with --decode");
    if (decode && (o.spec.training || sm_model_is_file(o.spec.name)))
        return sm_cli_fail(cmd, "--decode plans a template's KV-cached inference step: give a template and no --train");
    if (sm_dist_split_batch(&o.spec, (int)ranks) || sm_plan_cli_build(&o, &m, &plan))
        return sm_cli_fail(cmd, "%s", sm_last_error());
    if (decode && plan_decode(&o, (int)window, (int)sink, &m, &plan)) {
        sm_plan_free(plan);
        sm_model_free(&m);
        return sm_cli_fail(cmd, "%s", sm_last_error());
    }
    /* the communication buffer: not an arena of the plan (the plan is the same on any number of ranks),
     * a buffer the rank holds next to it (docs/memory.md) */
    uint64_t comm = sm_dist_buffer_bytes(m.g, (int)ranks), total = sm_plan_estimate(plan) + comm;
    char b[2][SM_BYTES_STR_MAX];
    double ms = (omp_get_wtime() - t0) * 1e3;
    char *report = NULL, *config = NULL;
    int rc = 0;
    sm_memory_config mc;
    if (sm_plan_report(plan, m.g, o.json ? SM_REPORT_JSON : SM_REPORT_TEXT, o.budget, &report) ||
        sm_memory_config_get(plan, o.budget_auto ? 0 : o.budget, &mc) ||
        sm_memory_config_report(&mc, o.json ? SM_REPORT_JSON : SM_REPORT_TEXT, &config)) {
        rc = sm_cli_fail(cmd, "%s", sm_last_error());
        goto out;
    }
    const sm_gpt_config *c = &m.gpt;
    if (o.json) {
        printf("{\n\"model\": {\"name\": %s, \"vocab\": %d, \"context\": %d, \"n_layer\": %d, \"n_head\": %d, "
               "\"n_embd\": %d, \"batch\": %d, \"seq\": %d},\n\"mode\": \"%s\",\n\"budget_source\": \"%s\",\n"
               "\"build_and_plan_ms\": %.3f,\n\"data_parallel\": {\"ranks\": %lld, \"comm_buffer\": %llu, "
               "\"total_per_rank\": %llu},\n\"memory_config\": %s,\n\"plan\": %s}\n",
               sm_plan_cli_json_name(o.spec.name), c->vocab, c->context, c->n_layer, c->n_head, c->n_embd, c->batch, c->seq,
               sm_plan_cli_mode(&o), o.budget_auto ? "auto" : o.budget ? "given" : "none", ms, ranks,
               (unsigned long long)comm, (unsigned long long)total, config, report);
    } else {
        printf("model %s: L=%d C=%d H=%d V=%d context=%d, B=%d T=%d, %s (graph built and planned in %.1f ms)\n",
               o.spec.name, c->n_layer, c->n_embd, c->n_head, c->vocab, c->context, c->batch, c->seq,
               sm_plan_cli_mode(&o), ms);
        fputs(config, stdout);
        fputs(report, stdout);
        if (ranks > 1)
            printf("data parallel, %lld ranks of B=%d: + communication %s (gradient exchange receive buffer, outside "
                   "the arenas) = %s per rank\n", ranks, c->batch, sm_format_bytes(comm, b[0], sizeof b[0]),
                   sm_format_bytes(total, b[1], sizeof b[1]));
        if (o.budget_auto) printf("(budget auto: the smallest of RAM, available RAM and the container limit)\n");
    }
    if (o.svg && sm_plan_write_svg(plan, m.g, o.svg)) rc = sm_cli_fail(cmd, "%s", sm_last_error());
    if (!rc && o.save && sm_plan_save(plan, o.save)) rc = sm_cli_fail(cmd, "%s", sm_last_error());
    if (!rc && o.budget && total > o.budget) rc = 1;
out:
    free(report);
    free(config);
    sm_plan_free(plan);
    sm_model_free(&m);
    return rc;
}
