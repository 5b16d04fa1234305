/* session.c — tokenizers, corpora and model sessions for the commands. */
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../../base/error.h"
#include "../checkpoint.h"
#include "../safetensors.h"
#include "../token_stream.h"
#include "session.h"

sm_status sm_cli_tokenizer_open(const char *spec, sm_tokenizer **out)
{
    if (!spec || !strcmp(spec, "byte")) return sm_tokenizer_byte_create(out);
    if (!strncmp(spec, "gpt2:", 5)) {
        char buf[1024];
        snprintf(buf, sizeof buf, "%s", spec + 5);
        char *merges = strchr(buf, ':');
        if (merges) {
            *merges++ = '\0';
            return sm_tokenizer_gpt2_load(buf, merges, out);
        }
    }
    return sm_error(SM_ERR_INVALID_ARG, "tokenizer '%s': use 'byte' or 'gpt2:VOCAB.json:MERGES.txt'", spec);
}

/* Appends a piece of the stream to a growing array. */
typedef struct id_array {
    int32_t *v;
    int64_t n, cap;
} id_array;

static sm_status append_ids(void *ctx, const int32_t *ids, int64_t n)
{
    id_array *a = ctx;
    if (n > a->cap - a->n) {
        int64_t cap = a->cap ? a->cap : 1024;
        while (cap - a->n < n) {
            if (cap > INT64_MAX / 2 || (uint64_t)cap * 2 > SIZE_MAX / sizeof *a->v)
                return sm_error(SM_ERR_NOMEM, "too many tokens to hold in memory");
            cap *= 2;
        }
        int32_t *v = realloc(a->v, sizeof *v * (size_t)cap);
        if (!v) return sm_error(SM_ERR_NOMEM, "out of memory for %lld tokens", (long long)cap);
        a->v = v;
        a->cap = cap;
    }
    memcpy(a->v + a->n, ids, sizeof *ids * (size_t)n);
    a->n += n;
    return SM_OK;
}

sm_status sm_cli_read_tokens(const char *path, const sm_tokenizer *tok, bool ids_file, int32_t **ids, int64_t *n)
{
    id_array a = {0};
    sm_status s = sm_token_stream_file(path, tok, ids_file, SM_CLI_READ_PIECE, append_ids, &a);
    if (s) {
        free(a.v);
        return s;
    }
    *ids = a.v;
    *n = a.n;
    return SM_OK;
}

sm_status sm_session_open(sm_session *s, const sm_model_spec *spec, const sm_adamw_config *adamw, int threads)
{
    sm_status st = sm_session_load(s, spec, adamw);
    return st ? st : sm_session_start(s, threads);
}

sm_status sm_session_load(sm_session *s, const sm_model_spec *spec, const sm_adamw_config *adamw)
{
    memset(s, 0, sizeof *s);
    sm_model_spec sp = *spec;
    sp.adamw = adamw;
    s->recompute = spec->recompute;
    s->precision = spec->precision;
    return sm_model_load(&sp, &s->m);
}

sm_status sm_session_start(sm_session *s, int threads)
{
    sm_status st = sm_session_plan(s, threads);
    return st ? st : sm_session_alloc(s);
}

sm_status sm_session_plan(sm_session *s, int threads)
{
    sm_plan_options po;
    sm_plan_options_default(&po);
    po.n_threads = threads;
    po.recompute = s->recompute;
    po.precision = s->precision;
    sm_status st = sm_plan_create(s->m.g, &po, &s->plan);
    if (st) sm_session_close(s);
    return st;
}

sm_status sm_session_alloc(sm_session *s)
{
    sm_status st = sm_runtime_create(s->m.g, s->plan, &s->rt);
    if (st) sm_session_close(s);
    return st;
}

void sm_session_close(sm_session *s)
{
    sm_runtime_free(s->rt);
    sm_plan_free(s->plan);
    sm_model_free(&s->m);
    memset(s, 0, sizeof *s);
}

/* A string fact into buf (absent: left as it is); one too long for buf is an error, not cut short. */
static sm_status fact_str(const sm_st_file *f, const char *key, char *buf, size_t cap)
{
    const char *v = sm_st_metadata_get(f, key);
    size_t n = v ? strlen(v) : 0;
    if (n >= cap)
        return sm_error(SM_ERR_FORMAT, "%s: metadata '%s' is %zu bytes long; at most %zu are read: the file was edited or "
                        "damaged", sm_st_name(f), key, n, cap - 1);
    if (v) memcpy(buf, v, n + 1);
    return SM_OK;
}

static sm_status fact_int(const sm_st_file *f, const char *key, long long max, int *out)
{
    long long v = 0;
    sm_status s = sm_checkpoint_meta_int(f, key, 1, max, &v);
    *out = (int)v;
    return s;
}

/* The nine settings `smallmind train --save` writes, in its order, as AdamW takes them. */
static sm_status fact_adamw(const sm_st_file *f, sm_run_facts *rf)
{
    const char *v = sm_st_metadata_get(f, "adamw");
    if (!v) return SM_OK;
    sm_adamw_config *c = &rf->adamw;
    long long warm = 0, total = 0;
    int end = -1;
    bool ok = sscanf(v, "lr=%g min_lr=%g warmup=%lld total=%lld beta1=%g beta2=%g eps=%g wd=%g clip=%g%n", &c->lr,
                     &c->min_lr, &warm, &total, &c->beta1, &c->beta2, &c->eps, &c->weight_decay, &c->grad_clip,
                     &end) == 9 && end >= 0 && !v[end];
    ok = ok && isfinite(c->lr) && isfinite(c->min_lr) && isfinite(c->eps) && isfinite(c->weight_decay) &&
         isfinite(c->grad_clip);
    if (!ok)
        return sm_error(SM_ERR_FORMAT, "%s: metadata 'adamw' is \"%.200s\"; it must read \"lr=X min_lr=X warmup=N "
                        "total=N beta1=X beta2=X eps=X wd=X clip=X\" with finite numbers: the file was edited or "
                        "damaged", sm_st_name(f), v);
    c->warmup_steps = warm;
    c->total_steps = total;
    float hp[SM_ADAMW_HPARAMS];
    sm_status s = sm_adamw_hparams(c, 0, hp);   /* AdamW's own range checks */
    if (s) return sm_error_prefix(s, "%s: metadata 'adamw': ", sm_st_name(f));
    rf->has_adamw = true;
    return SM_OK;
}

/* Each define is KEY=VALUE, and all of them fit a model spec. */
static sm_status fact_defines(const sm_st_file *f, const char *defines)
{
    int n = 0, cap = (int)(sizeof((sm_model_spec *)0)->defines / sizeof(const char *));
    for (const char *d = defines; *d;) {
        size_t len = strcspn(d, " ");
        if (len && (!memchr(d, '=', len) || *d == '=' || ++n > cap))
            return sm_error(SM_ERR_FORMAT, "%s: metadata 'defines' holds '%.*s'; it must be up to %d KEY=VALUE "
                            "separated by spaces: the file was edited or damaged", sm_st_name(f), (int)(len > 200 ? 200 : len),
                            d, cap);
        d += len + (d[len] == ' ');
    }
    return SM_OK;
}

sm_status sm_run_facts_read(const char *path, sm_run_facts *rf)
{
    sm_st_file *f;
    sm_status st = sm_checkpoint_open(path, &f);
    if (st) return st;
    memset(rf, 0, sizeof *rf);
    strcpy(rf->tokenizer, "byte");
    sm_adamw_config_default(&rf->adamw);
    rf->complete = sm_st_metadata_get(f, "model") && sm_st_metadata_get(f, "batch") && sm_st_metadata_get(f, "seq") &&
                   sm_st_metadata_get(f, "tokenizer") && sm_st_metadata_get(f, "seed");
    /* the ranges train takes them in */
    if (!st) st = fact_str(f, "model", rf->model, sizeof rf->model);
    if (!st) st = fact_str(f, "tokenizer", rf->tokenizer, sizeof rf->tokenizer);
    if (!st) st = fact_str(f, "defines", rf->defines, sizeof rf->defines);
    if (!st) st = fact_defines(f, rf->defines);
    if (!st) st = fact_int(f, "batch", 1 << 20, &rf->batch);
    if (!st) st = fact_int(f, "seq", 1 << 24, &rf->seq);
    if (!st) st = sm_checkpoint_meta_int(f, "seed", 0, LLONG_MAX, &rf->seed);
    if (!st) st = sm_checkpoint_meta_int(f, "step", 0, LLONG_MAX, &rf->step);
    if (!st) st = fact_adamw(f, rf);
    if (!st) st = sm_checkpoint_meta_scaler(f, &rf->loss_scaler, &rf->has_loss_scaler);
    if (!st && rf->has_loss_scaler && rf->loss_scaler.skipped > rf->step)
        st = sm_error(SM_ERR_FORMAT, "%s: metadata '%s' counts %lld skipped steps, more than the %lld steps run: the "
                      "file was edited or damaged", path, SM_CKPT_KEY_LOSS_SCALE, (long long)rf->loss_scaler.skipped,
                      rf->step);
    sm_st_close(f);
    return st;
}
