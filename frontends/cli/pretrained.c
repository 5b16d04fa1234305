/* pretrained.c — opening a trained model for generate and eval: a smallmind checkpoint (its
 * metadata names the model, T and tokenizer) or GPT-2 weights published by other tools (llm.c's
 * gpt2_*.bin, Hugging Face gpt2 safetensors). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../../base/error.h"
#include "../checkpoint.h"
#include "../gpt2_import.h"
#include "pretrained.h"

static bool ends_with(const char *s, const char *suffix)
{
    size_t a = strlen(s), b = strlen(suffix);
    return a >= b && !strcmp(s + a - b, suffix);
}

static sm_status open_checkpoint(const sm_pretrained_options *o, sm_session *s, sm_tokenizer **tok)
{
    static sm_run_facts rf;   /* the spec points into it */
    sm_status st = sm_run_facts_read(o->checkpoint, &rf);
    if (st) return st;
    if (!rf.model[0]) return sm_error(SM_ERR_FORMAT, "%s: no 'model' in its metadata: give a checkpoint written by "
                                      "`smallmind train --save`, or GPT-2 weights with --gpt2", o->checkpoint);
    sm_model_spec spec = {.name = rf.model, .batch = o->batch, .seq = o->seq ? o->seq : rf.seq, .inference = o->inference,
                          .precision = o->precision};
    sm_model_spec_split_defines(&spec, rf.defines);
    st = sm_cli_tokenizer_open(o->tokenizer ? o->tokenizer : rf.tokenizer, tok);
    if (!st) st = sm_session_open(s, &spec, NULL, o->threads);
    if (!st) st = sm_checkpoint_load(s->rt, o->checkpoint, 0, NULL);
    return st;
}

/* Copies imported arrays into the parameters of the same canonical names. llm.c pads the vocabulary
 * (Vp rows of wte): the first V rows are the real ones. */
static sm_status load_gpt2(sm_session *s, const sm_gpt2_weights *w, const char *path)
{
    const sm_graph *g = s->m.g;
    for (int i = 0; i < sm_graph_tensor_count(g); i++) {
        const char *name;
        sm_role role;
        if (sm_tensor_info(g, i, &name, NULL, &role, NULL, NULL) || role != SM_ROLE_PARAM) continue;
        const sm_named_array *a = sm_gpt2_weights_find(w, name);
        int64_t n = sm_tensor_numel(g, i);
        if (!a) return sm_error(SM_ERR_FORMAT, "%s: has no weights for '%s'", path, name);
        if (a->numel < n || (a->numel != n && strcmp(name, "wte")))
            return sm_error(SM_ERR_FORMAT, "%s: '%s' has %lld values, the model needs %lld", path, name,
                            (long long)a->numel, (long long)n);
        /* set, not a copy into sm_runtime_data: a 16-bit weight (--precision) is converted there */
        sm_status st = sm_runtime_set(s->rt, i, a->data, (size_t)n * sizeof(float));
        if (st) return st;
    }
    return SM_OK;
}

static sm_status open_gpt2(const sm_pretrained_options *o, sm_session *s, sm_tokenizer **tok)
{
    sm_gpt2_weights w;
    sm_status st = ends_with(o->gpt2, ".bin") ? sm_gpt2_load_llmc(o->gpt2, &w)
                                              : sm_gpt2_load_hf_file(o->gpt2, o->n_head, &w);
    if (st) return st;
    if (!w.hp.n_head) {   /* a guess would build another model whenever it divides C */
        sm_gpt2_weights_free(&w);
        return sm_error(SM_ERR_INVALID_ARG, "%s: Hugging Face weights do not store the number of attention heads and "
                        "there is no config.json next to them: add --heads N (12 for GPT-2 124M)", o->gpt2);
    }
    sm_gpt_config c;
    sm_gpt_config_default(&c);
    c.vocab = w.hp.vocab;
    c.context = w.hp.max_seq;
    c.n_layer = w.hp.n_layer;
    c.n_head = w.hp.n_head;
    c.n_embd = w.hp.n_embd;
    c.batch = o->batch ? o->batch : 1;
    c.seq = o->seq ? o->seq : (c.context < 1024 ? c.context : 1024);
    c.with_loss = !o->inference;
    memset(s, 0, sizeof *s);
    s->m.gpt = c;
    s->precision = o->precision;
    st = sm_graph_create(&s->m.g);
    if (!st) st = sm_gpt_build(s->m.g, &c, &s->m.io);
    if (!st) st = sm_session_start(s, o->threads);
    if (!st) st = load_gpt2(s, &w, o->gpt2);
    sm_gpt2_weights_free(&w);
    if (!st) {
        if (!o->tokenizer)
            return sm_error(SM_ERR_INVALID_ARG, "GPT-2 weights need GPT-2's tokenizer: add --tokenizer "
                            "gpt2:VOCAB.json:MERGES.txt");
        st = sm_cli_tokenizer_open(o->tokenizer, tok);
    }
    return st;
}

sm_status sm_pretrained_open(const sm_pretrained_options *o, sm_session *s, sm_tokenizer **tok)
{
    *tok = NULL;
    memset(s, 0, sizeof *s);
    if (!o->checkpoint == !o->gpt2)
        return sm_error(SM_ERR_INVALID_ARG, "give exactly one of --checkpoint FILE or --gpt2 FILE");
    sm_status st = o->checkpoint ? open_checkpoint(o, s, tok) : open_gpt2(o, s, tok);
    if (!st) st = sm_tokenizer_check_vocab(*tok, s->m.gpt.vocab, o->checkpoint ? o->checkpoint : o->gpt2);
    if (st) {
        sm_session_close(s);
        sm_tokenizer_free(*tok);
        *tok = NULL;
    }
    return st;
}
