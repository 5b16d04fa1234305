/* session.c — tokenizers, corpora and model sessions for the commands. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../../graph/error.h"
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

sm_status sm_run_facts_read(const char *path, sm_run_facts *rf)
{
    sm_st_file *f;
    sm_status st = sm_st_open(path, &f);
    if (st) return st;
    const char *m = sm_st_metadata_get(f, "model"), *b = sm_st_metadata_get(f, "batch"),
               *t = sm_st_metadata_get(f, "seq"), *k = sm_st_metadata_get(f, "tokenizer"),
               *s = sm_st_metadata_get(f, "seed"), *d = sm_st_metadata_get(f, "defines"),
               *a = sm_st_metadata_get(f, "adamw"), *n = sm_st_metadata_get(f, "step");
    memset(rf, 0, sizeof *rf);
    rf->complete = m && b && t && k && s;
    snprintf(rf->model, sizeof rf->model, "%s", m ? m : "");
    snprintf(rf->tokenizer, sizeof rf->tokenizer, "%s", k ? k : "byte");
    snprintf(rf->defines, sizeof rf->defines, "%s", d ? d : "");
    snprintf(rf->adamw, sizeof rf->adamw, "%s", a ? a : "");
    rf->batch = b ? atoi(b) : 0;
    rf->seq = t ? atoi(t) : 0;
    rf->seed = s ? atoll(s) : 0;
    rf->step = n ? atoll(n) : 0;
    sm_st_close(f);
    return SM_OK;
}
