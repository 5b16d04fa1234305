/* cmd_generate.c — `smallmind generate` (sample text, streamed token by token) and `smallmind eval`
 * (mean cross-entropy and perplexity over a file, in consecutive non-overlapping windows of T, and
 * strided with --stride: the windows come from the library, frontends/window_run.c). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <omp.h>

#include "../dataset.h"
#include "../../base/buf.h"
#include "../sampler.h"
#include "../token_stream.h"
#include "generate.h"
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
    } else if (!strcmp(a, "--precision")) {
        if (!val || sm_precision_parse(val, &p->precision))
            return fprintf(stderr, "smallmind %s: --precision: %s\n", cmd, val ? sm_last_error() : "needs fp32, bf16 "
                           "or fp16"), 2;
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
    "  --precision P        fp32 (default), bf16 or fp16: store the weights in 16 bits (2 B/param),\n" \
    "                       converted once as they load (docs/mixed-precision.md)\n"                    \
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
    sm_generate_kv kv = {0};
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
                   "                       that is no character, e.g. half of one, shown as U+FFFD)\n"
                   "  --kv ram|file:PATH   where the KV cache lives (default ram); a file is created (it must not\n"
                   "                       exist), reserved up front, kept, and can be resumed (docs/kv-format.md)\n"
                   "  --kv-file PATH       the same as --kv file:PATH\n"
                   "  --continue TEXT      resume the session in --kv-file and go on after TEXT (may be \"\")\n"
                   "  --no-kv-cache        no cache: re-run the last T tokens for every token (slow; the reference)\n");
            return 0;
        } else if (!strcmp(a, "--prompt") && val) g.prompt = argv[++i];
        else if (!strcmp(a, "-n")) { if (!sm_cli_int(cmd, a, val, 1, 1 << 24, &v)) return 2; g.n_tokens = (int)v; i++; }
        else if (!strcmp(a, "--top-k")) { if (!sm_cli_int(cmd, a, val, 0, 1 << 30, &v)) return 2; g.top_k = (int)v; i++; }
        else if (!strcmp(a, "--seed")) { if (!sm_cli_int(cmd, a, val, 0, INT64_MAX, &v)) return 2; g.seed = v; i++; }
        else if (!strcmp(a, "--temperature") || !strcmp(a, "--top-p")) {
            if (!sampler_number(cmd, a, val, &g)) return 2;
            i++;
        } else if (!strcmp(a, "--raw")) g.raw = true;
        else if (!strcmp(a, "--no-kv-cache")) kv.off = true;
        else if ((!strcmp(a, "--kv") || !strcmp(a, "--kv-file")) && val) {
            if (a[4] == '-') kv.file = val;
            else if (!strncmp(val, "file:", 5) && val[5]) kv.file = val + 5;
            else if (strcmp(val, "ram")) {
                fprintf(stderr, "smallmind %s: --kv takes ram or file:PATH, not '%s'\n", cmd, val);
                return 2;
            }
            i++;
        } else if (!strcmp(a, "--continue") && val) {
            kv.resume = true;
            kv.cont = argv[++i];
        }
        else {
            fprintf(stderr, "smallmind %s: unknown option or missing value '%s' (see --help)\n", cmd, a);
            return 2;
        }
    }
    if (kv.off && (kv.file || kv.resume)) {
        fprintf(stderr, "smallmind %s: --no-kv-cache goes with neither --kv file: nor --continue\n", cmd);
        return 2;
    }
    if (kv.resume && !kv.file) {
        fprintf(stderr, "smallmind %s: --continue resumes a KV file: give it with --kv-file PATH\n", cmd);
        return 2;
    }
    sm_session s;
    sm_tokenizer *tok;
    if (sm_pretrained_open(&p, &s, &tok)) return sm_cli_fail(cmd, "%s", sm_last_error());
    int rc = kv.off ? sm_generate_run(cmd, &s, tok, &g) : sm_generate_cached(cmd, &s, tok, &g, &kv);
    sm_session_close(&s);
    sm_tokenizer_free(tok);
    return rc;
}

/* Feeds one piece of the file to every evaluator. */
typedef struct eval_sinks {
    sm_window_eval *e[2];
    int n;
} eval_sinks;

static sm_status eval_push(void *ctx, const int32_t *ids, int64_t n)
{
    eval_sinks *k = ctx;
    sm_status st = SM_OK;
    for (int i = 0; i < k->n && !st; i++) st = sm_window_eval_push(k->e[i], ids, n);
    return st;
}

/* "cross_entropy": ce, "perplexity": exp(ce), each null when not finite */
static void json_figures(sm_buf *j, double ce)
{
    sm_buf_puts(j, "\"cross_entropy\": ");
    sm_buf_json_number(j, ce, 6);
    sm_buf_puts(j, ", \"perplexity\": ");
    sm_buf_json_number(j, exp(ce), 6);
}

static void eval_print(const char *data, bool json, int64_t W, int64_t S, const sm_window_eval_result *r, double dt)
{
    const sm_window_eval_result *flat = &r[0], *strided = S < W ? &r[1] : NULL;
    if (json) {
        sm_buf j;
        sm_buf_init(&j);
        sm_buf_puts(&j, "{\"file\": ");
        sm_buf_json_string(&j, data, strlen(data));
        sm_buf_printf(&j, ", \"tokens\": %lld, \"predicted\": %lld, \"window\": %lld, ", (long long)flat->tokens,
                      (long long)flat->predicted, (long long)W);
        json_figures(&j, flat->cross_entropy);   /* null if not finite: JSON has no NaN or infinity */
        if (strided) {
            sm_buf_printf(&j, ", \"strided\": {\"stride\": %lld, \"context_min\": %lld, \"windows\": %lld, ",
                          (long long)S, (long long)(W - S), (long long)strided->windows);
            json_figures(&j, strided->cross_entropy);
            sm_buf_puts(&j, "}");
        }
        sm_buf_printf(&j, ", \"seconds\": %.3f}", dt);
        puts(j.data ? j.data : "{}");
        sm_buf_free(&j);
        return;
    }
    printf("%s: %lld tokens, %lld predicted in windows of %lld: cross-entropy %.4f nats/token, perplexity %.3f "
           "(%.1f s)\n", data, (long long)flat->tokens, (long long)flat->predicted, (long long)W, flat->cross_entropy,
           exp(flat->cross_entropy), dt);
    if (strided)
        printf("strided, stride %lld (each token predicted once, with at least %lld tokens of context): cross-entropy "
               "%.4f nats/token, perplexity %.3f (%lld windows)\n", (long long)S, (long long)(W - S),
               strided->cross_entropy, exp(strided->cross_entropy), (long long)strided->windows);
}

int sm_cmd_eval(int argc, char **argv)
{
    const char *cmd = "eval", *data = NULL;
    bool json = false, ids_file = false;
    long long stride = 0;
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
                   "  non-overlapping windows of T tokens (every token but the first is predicted once), and\n"
                   "  with --stride S < T also strided: windows of T every S tokens, each token predicted once\n"
                   "  with at least T-S tokens of context. The file is read a piece at a time: memory does not\n"
                   "  grow with its length.\n"
                   PRETRAINED_HELP
                   "  --window W           the same as -T\n"
                   "  --stride S           windows start every S tokens, 1 <= S <= T (default T: no overlap)\n"
                   "  -B N                 windows per run (default 1)\n"
                   "  --data FILE          text to score\n"
                   "  --ids                FILE holds whitespace-separated token ids, not text\n"
                   "  --json               print the result as JSON\n");
            return 0;
        } else if (!strcmp(a, "--data") && i + 1 < argc) data = argv[++i];
        else if (!strcmp(a, "--json")) json = true;
        else if (!strcmp(a, "--ids")) ids_file = true;
        else if (!strcmp(a, "--window") || !strcmp(a, "--stride")) {
            long long v;
            if (!sm_cli_int(cmd, a, i + 1 < argc ? argv[i + 1] : NULL, 1, 1 << 24, &v)) return 2;
            if (a[2] == 'w') p.seq = (int)v;
            else stride = v;
            i++;
        } else {
            fprintf(stderr, "smallmind %s: unknown option or missing value '%s' (see --help)\n", cmd, a);
            return 2;
        }
    }
    if (!data) return fprintf(stderr, "smallmind %s: --data FILE is required (see --help)\n", cmd), 2;
    sm_session s;
    sm_tokenizer *tok;
    if (sm_pretrained_open(&p, &s, &tok)) return sm_cli_fail(cmd, "%s", sm_last_error());
    int rc = 1;
    int64_t W = s.m.gpt.seq, S = stride ? stride : W;
    eval_sinks k = {.n = S != W ? 2 : 1};   /* [0] non-overlapping, [1] strided (S > W: refused by create) */
    sm_window_eval_result r[2];
    double t0 = omp_get_wtime();
    for (int i = 0; i < k.n; i++)
        if (sm_window_eval_create(s.rt, s.m.io.tokens, s.m.io.targets, s.m.io.loss, i ? S : W, &k.e[i])) goto fail;
    if (sm_token_stream_file(data, tok, ids_file, SM_CLI_READ_PIECE, eval_push, &k)) goto fail;
    for (int i = 0; i < k.n; i++)
        if (sm_window_eval_finish(k.e[i], &r[i])) goto fail;
    if (r[0].predicted < 1) {
        sm_cli_fail(cmd, "%s has %lld tokens: nothing to predict (it takes at least 2)", data, (long long)r[0].tokens);
        goto out;
    }
    eval_print(data, json, W, S, r, omp_get_wtime() - t0);
    rc = 0;
    goto out;
fail:
    sm_cli_fail(cmd, "%s", sm_last_error());
out:
    for (int i = 0; i < k.n; i++) sm_window_eval_free(k.e[i]);
    sm_session_close(&s);
    sm_tokenizer_free(tok);
    return rc;
}
