/* cmd_generate.c — `smallmind generate` (sample text, streamed token by token) and `smallmind eval`
 * (mean cross-entropy and perplexity over a file, in consecutive non-overlapping windows of T). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <omp.h>

#include "../dataset.h"
#include "../../base/buf.h"
#include "../sampler.h"
#include "pretrained.h"
#include "train.h"

/* Writes one token: its bytes as they are (raw), or as displayable UTF-8 (a byte that cannot form a
 * character becomes U+FFFD). text holds SM_DECODE_STEP_CAP bytes. An id the tokenizer has no bytes
 * for (a model vocabulary padded past the tokenizer's) prints nothing. */
static void emit(const sm_tokenizer *tok, sm_decode_stream *ds, int32_t id, bool raw, char *text, size_t cap)
{
    const char *bytes = text;
    size_t k;
    sm_status s = raw ? sm_tokenizer_token_bytes(tok, id, &bytes, &k) : sm_tokenizer_decode_step(tok, ds, id, text, cap, &k);
    if (s == SM_OK) fwrite(bytes, 1, k, stdout);
    fflush(stdout);
}

int sm_generate_run(const char *cmd, sm_session *s, const sm_tokenizer *tok, const sm_generate_options *o)
{
    int T = s->m.gpt.seq, V = s->m.gpt.vocab, rc = 1;
    int32_t *ctx = NULL, *win = calloc((size_t)T, sizeof *win), *prompt = NULL;
    float *logits = malloc(sizeof *logits * (size_t)T * (size_t)V);
    size_t cap = SM_DECODE_STEP_CAP(sm_tokenizer_max_token_bytes(tok)), n_prompt = 0;
    char *text = malloc(cap);
    void *work = malloc(SM_SAMPLER_WORK(V));
    sm_sampler smp = {.temperature = o->temperature, .top_k = o->top_k, .top_p = o->top_p, .seed = (uint64_t)o->seed};
    if (!win || !logits || !text || !work) {
        sm_cli_fail(cmd, "out of memory");
        goto out;
    }
    if (o->prompt && *o->prompt && sm_tokenizer_encode(tok, o->prompt, strlen(o->prompt), &prompt, &n_prompt)) {
        sm_cli_fail(cmd, "%s", sm_last_error());
        goto out;
    }
    int32_t start = 0;   /* an empty prompt starts after a newline (byte) or <|endoftext|> (GPT-2) */
    if (!n_prompt && sm_tokenizer_token_id(tok, "<|endoftext|>", 13, &start)) start = '\n';
    size_t n = n_prompt ? n_prompt : 1, total = n + (size_t)o->n_tokens;
    ctx = malloc(sizeof *ctx * total);
    if (!ctx) {
        sm_cli_fail(cmd, "out of memory");
        goto out;
    }
    if (n_prompt) memcpy(ctx, prompt, sizeof *ctx * n_prompt);
    else ctx[0] = start;
    if (o->prompt) fputs(o->prompt, stdout);
    fflush(stdout);
    sm_decode_stream ds;
    sm_decode_stream_init(&ds);
    /* No KV cache yet: each token runs the model over the last T tokens, left-aligned; causal
     * attention makes the logits at position len-1 independent of the padding after it. */
    for (int i = 0; i < o->n_tokens; i++) {
        size_t len = n < (size_t)T ? n : (size_t)T;
        memset(win, 0, sizeof *win * (size_t)T);
        memcpy(win, ctx + n - len, sizeof *win * len);
        int32_t next;
        if (sm_runtime_set(s->rt, s->m.io.tokens, win, sizeof *win * (size_t)T) || sm_runtime_run(s->rt) ||
            sm_runtime_get(s->rt, s->m.io.logits, logits, sizeof *logits * (size_t)T * (size_t)V) ||
            sm_sampler_pick(&smp, logits + (len - 1) * (size_t)V, V, (uint64_t)i, work, &next)) {
            sm_cli_fail(cmd, "%s", sm_last_error());
            goto out;
        }
        ctx[n++] = next;
        emit(tok, &ds, next, o->raw, text, cap);
    }
    if (!o->raw) fwrite(text, 1, sm_decode_stream_flush(&ds, text), stdout);
    putchar('\n');
    rc = 0;
out:
    free(ctx), free(win), free(prompt), free(logits), free(text), free(work);
    return rc;
}

static int pretrained_arg(const char *cmd, int *i, int argc, char **argv, sm_pretrained_options *p)
{
    const char *a = argv[*i], *val = *i + 1 < argc ? argv[*i + 1] : NULL;
    long long v;
    const char **dst = !strcmp(a, "--checkpoint") ? &p->checkpoint : !strcmp(a, "--gpt2") ? &p->gpt2
                     : !strcmp(a, "--tokenizer") ? &p->tokenizer : NULL;
    if (dst) {
        if (!val) return fprintf(stderr, "smallmind %s: %s needs a value\n", cmd, a), 2;
        *dst = val;
    } else if (!strcmp(a, "-T") || !strcmp(a, "-B") || !strcmp(a, "--threads") || !strcmp(a, "--heads")) {
        if (!sm_cli_int(cmd, a, val, 1, 1 << 24, &v)) return 2;
        if (a[1] == 'T') p->seq = (int)v;
        else if (a[1] == 'B') p->batch = (int)v;
        else if (a[2] == 't') p->threads = (int)v;
        else p->n_head = (int)v;
    } else {
        return -1;   /* not ours */
    }
    (*i)++;
    return 0;
}

#define PRETRAINED_HELP                                                                                \
    "  --checkpoint FILE    a model saved by `smallmind train --save`\n"                               \
    "  --gpt2 FILE          GPT-2 weights: llm.c gpt2_*.bin or Hugging Face model.safetensors\n"      \
    "  --tokenizer SPEC     byte or gpt2:VOCAB.json:MERGES.txt (required with --gpt2)\n"               \
    "  --heads N            attention heads of a Hugging Face file (default: its config.json's;\n"    \
    "                       required when there is no config.json next to the file)\n"               \
    "  -T N                 context window (default: the trained T, or 1024 for GPT-2)\n"              \
    "  --threads N          OpenMP threads\n"

/* --temperature X (>= 0) or --top-p P (in (0, 1]), checked as the float the sampler gets. */
static bool sampler_number(const char *cmd, const char *opt, const char *val, sm_generate_options *g)
{
    bool temp = !strcmp(opt, "--temperature");
    char *end = NULL;
    float x = val ? (float)strtod(val, &end) : NAN;
    if (!val || end == val || *end || !isfinite(x) || (temp ? !(x >= 0) : !(x > 0 && x <= 1))) {
        fprintf(stderr, "smallmind %s: %s needs a number %s, got '%s'\n", cmd, opt,
                temp ? ">= 0 (0 = greedy)" : "in (0, 1] (1 = no nucleus cut)", val ? val : "(nothing)");
        return false;
    }
    *(temp ? &g->temperature : &g->top_p) = x;
    return true;
}

int sm_cmd_generate(int argc, char **argv)
{
    const char *cmd = "generate";
    sm_pretrained_options p = {.inference = true, .batch = 1};
    sm_generate_options g = {.prompt = "", .n_tokens = 200, .temperature = 0.8f, .top_k = 40, .top_p = 0.95f, .seed = 1};
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *val = i + 1 < argc ? argv[i + 1] : NULL;
        long long v;
        int r = pretrained_arg(cmd, &i, argc, argv, &p);
        if (r >= 0) {
            if (r) return r;
            continue;
        }
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
            printf("usage: smallmind generate (--checkpoint FILE | --gpt2 FILE --tokenizer SPEC) [options]\n"
                   "  Samples text from a trained model, printing tokens as they come.\n" PRETRAINED_HELP
                   "  --prompt TEXT        text to continue (default: none)\n"
                   "  -n N                 tokens to generate (default 200)\n"
                   "  --temperature X      0 = greedy (default 0.8)\n"
                   "  --top-k K            sample from the K most likely (default 40; 0 = all)\n"
                   "  --top-p P            nucleus: smallest set with probability P, in (0, 1] (default 0.95)\n"
                   "  --seed N             sampling seed (default 1)\n"
                   "  --raw                write each token's bytes as they are (default: as UTF-8 text, a byte\n"
                   "                       that is no character, e.g. half of one, shown as U+FFFD)\n");
            return 0;
        } else if (!strcmp(a, "--prompt") && val) g.prompt = argv[++i];
        else if (!strcmp(a, "-n")) { if (!sm_cli_int(cmd, a, val, 1, 1 << 24, &v)) return 2; g.n_tokens = (int)v; i++; }
        else if (!strcmp(a, "--top-k")) { if (!sm_cli_int(cmd, a, val, 0, 1 << 30, &v)) return 2; g.top_k = (int)v; i++; }
        else if (!strcmp(a, "--seed")) { if (!sm_cli_int(cmd, a, val, 0, INT64_MAX, &v)) return 2; g.seed = v; i++; }
        else if (!strcmp(a, "--temperature") || !strcmp(a, "--top-p")) {
            if (!sampler_number(cmd, a, val, &g)) return 2;
            i++;
        } else if (!strcmp(a, "--raw")) g.raw = true;
        else {
            fprintf(stderr, "smallmind %s: unknown option or missing value '%s' (see --help)\n", cmd, a);
            return 2;
        }
    }
    sm_session s;
    sm_tokenizer *tok;
    if (sm_pretrained_open(&p, &s, &tok)) return sm_cli_fail(cmd, "%s", sm_last_error());
    int rc = sm_generate_run(cmd, &s, tok, &g);
    sm_session_close(&s);
    sm_tokenizer_free(tok);
    return rc;
}

int sm_cmd_eval(int argc, char **argv)
{
    const char *cmd = "eval", *data = NULL;
    bool json = false, ids_file = false;
    sm_pretrained_options p = {.batch = 1};
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        int r = pretrained_arg(cmd, &i, argc, argv, &p);
        if (r >= 0) {
            if (r) return r;
            continue;
        }
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
            printf("usage: smallmind eval (--checkpoint FILE | --gpt2 FILE --tokenizer SPEC) --data FILE [options]\n"
                   "  Mean cross-entropy (nats/token) and perplexity of a model over a file, in consecutive\n"
                   "  non-overlapping windows of T tokens (every token but the first is predicted once).\n"
                   PRETRAINED_HELP
                   "  -B N                 windows per run (default 1)\n"
                   "  --data FILE          text to score\n"
                   "  --ids                FILE holds whitespace-separated token ids, not text\n"
                   "  --json               print the result as JSON\n");
            return 0;
        } else if (!strcmp(a, "--data") && i + 1 < argc) data = argv[++i];
        else if (!strcmp(a, "--json")) json = true;
        else if (!strcmp(a, "--ids")) ids_file = true;
        else {
            fprintf(stderr, "smallmind %s: unknown option or missing value '%s' (see --help)\n", cmd, a);
            return 2;
        }
    }
    if (!data) return fprintf(stderr, "smallmind %s: --data FILE is required (see --help)\n", cmd), 2;
    sm_session s;
    sm_tokenizer *tok;
    if (sm_pretrained_open(&p, &s, &tok)) return sm_cli_fail(cmd, "%s", sm_last_error());
    int rc = 1, B = s.m.gpt.batch, T = s.m.gpt.seq;
    int32_t *ids = NULL, *x = malloc(sizeof *x * (size_t)B * (size_t)T * 2);
    int64_t n = 0;
    sm_dataset d = {0};
    if (!x || sm_cli_read_tokens(data, tok, ids_file, &ids, &n) || sm_dataset_init(&d, ids, n, 0.0, 1)) {
        sm_cli_fail(cmd, "%s", x ? sm_last_error() : "out of memory");
        goto out;
    }
    double sum = 0, t0 = omp_get_wtime();
    int64_t counted = 0;
    for (int64_t k = 0; sm_dataset_seq_batch(&d, 0, d.n, k, B, T, x, x + (size_t)B * T); k++) {
        float loss;
        int64_t m = 0;
        for (int64_t i = 0; i < (int64_t)B * T; i++) m += x[(size_t)B * T + (size_t)i] >= 0;
        if (sm_runtime_set(s.rt, s.m.io.tokens, x, sizeof *x * (size_t)B * T) ||
            sm_runtime_set(s.rt, s.m.io.targets, x + (size_t)B * T, sizeof *x * (size_t)B * T) ||
            sm_runtime_run(s.rt) || sm_runtime_get(s.rt, s.m.io.loss, &loss, sizeof loss)) {
            sm_cli_fail(cmd, "%s", sm_last_error());
            goto out;
        }
        sum += (double)loss * (double)m;   /* the loss is the mean over this batch's m targets */
        counted += m;
    }
    double ce = counted ? sum / (double)counted : NAN, dt = omp_get_wtime() - t0;
    if (json) {
        sm_buf j;
        sm_buf_init(&j);
        sm_buf_puts(&j, "{\"file\": ");
        sm_buf_json_string(&j, data, strlen(data));
        sm_buf_printf(&j, ", \"tokens\": %lld, \"predicted\": %lld, \"window\": %d, \"cross_entropy\": ",
                           (long long)d.n, (long long)counted, T);
        sm_buf_json_number(&j, ce, 6);   /* null if not finite: JSON has no NaN or infinity */
        sm_buf_puts(&j, ", \"perplexity\": ");
        sm_buf_json_number(&j, exp(ce), 6);
        sm_buf_printf(&j, ", \"seconds\": %.3f}", dt);
        puts(j.data ? j.data : "{}");
        sm_buf_free(&j);
    }
    else
        printf("%s: %lld tokens, %lld predicted in windows of %d: cross-entropy %.4f nats/token, perplexity %.3f "
               "(%.1f s)\n", data, (long long)d.n, (long long)counted, T, ce, exp(ce), dt);
    rc = 0;
out:
    free(x);
    sm_dataset_free(&d);
    sm_session_close(&s);
    sm_tokenizer_free(tok);
    return rc;
}
