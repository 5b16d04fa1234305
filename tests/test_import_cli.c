/* test_import_cli.c — GPT-2 weights as other tools publish them, end to end: a model trained here is
 * written out in llm.c's gpt2_*.bin layout and in Hugging Face's gpt2 safetensors layout (Conv1D
 * weights transposed, "transformer." prefix), then `eval --gpt2` on each must score a text exactly as
 * `eval --checkpoint` does on the original. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "frontends/safetensors.h"
#include "tests/helpers/cli_run.h"

enum { V = 256, MAXT = 64, L = 2, H = 2, C = 64 };   /* the gpt-tiny template */

static char dir[256];
static void setup(void)
{
    snprintf(dir, sizeof dir, "/tmp/sm_import_cli_XXXXXX");
    cr_assert(mkdtemp(dir));
    cr_assert_eq(sm_test_sh("%s train gpt-tiny -B 2 -T 16 --val-every 0 --steps 3 --data %s --save %s/ck.st >/dev/null",
                            sm_test_cli(), sm_test_corpus(), dir), 0);
}
static void teardown(void) { sm_test_sh("rm -rf %s", dir); }
TestSuite(import_cli, .init = setup, .fini = teardown, .timeout = 120);

static const float *get(sm_st_file *f, const char *fmt, int l)
{
    char name[64];
    snprintf(name, sizeof name, fmt, l);
    const sm_st_tensor *t = sm_st_find(f, name);
    cr_assert(t, "%s", name);
    return t->data;   /* f32, written by us: 4-byte aligned in practice */
}

static size_t count(sm_st_file *f, const char *fmt, int l)
{
    char name[64];
    snprintf(name, sizeof name, fmt, l);
    return (size_t)sm_st_find(f, name)->numel;
}

/* llm.c: header of 256 int32, then each kind for all layers, in this order. */
static const char *kinds[12] = {"h%d.ln1.w", "h%d.ln1.b", "h%d.attn.qkv.w", "h%d.attn.qkv.b", "h%d.attn.proj.w",
                                "h%d.attn.proj.b", "h%d.ln2.w", "h%d.ln2.b", "h%d.mlp.fc.w", "h%d.mlp.fc.b",
                                "h%d.mlp.proj.w", "h%d.mlp.proj.b"};

static void write_llmc(sm_st_file *f, const char *path)
{
    FILE *o = fopen(path, "wb");
    int32_t hdr[256] = {20240326, 3, MAXT, V, L, H, C, V};
    fwrite(hdr, sizeof hdr, 1, o);
    fwrite(get(f, "wte", 0), 4, count(f, "wte", 0), o);
    fwrite(get(f, "wpe", 0), 4, count(f, "wpe", 0), o);
    for (int k = 0; k < 12; k++)
        for (int l = 0; l < L; l++) fwrite(get(f, kinds[k], l), 4, count(f, kinds[k], l), o);
    fwrite(get(f, "lnf.w", 0), 4, C, o);
    fwrite(get(f, "lnf.b", 0), 4, C, o);
    fclose(o);
}

/* Hugging Face: Conv1D stores [in, out], the transpose of our Linear [out, in]. */
static void write_hf(sm_st_file *f, const char *path)
{
    static const char *hf[12] = {"ln_1.weight", "ln_1.bias", "attn.c_attn.weight", "attn.c_attn.bias",
                                 "attn.c_proj.weight", "attn.c_proj.bias", "ln_2.weight", "ln_2.bias",
                                 "mlp.c_fc.weight", "mlp.c_fc.bias", "mlp.c_proj.weight", "mlp.c_proj.bias"};
    sm_st_entry e[4 + 12 * L];
    char names[4 + 12 * L][64];
    float *owned[12 * L];
    int n = 0, k_owned = 0;
    e[n++] = (sm_st_entry){"transformer.wte.weight", SM_ST_F32, 2, {V, C}, get(f, "wte", 0)};
    e[n++] = (sm_st_entry){"transformer.wpe.weight", SM_ST_F32, 2, {MAXT, C}, get(f, "wpe", 0)};
    for (int l = 0; l < L; l++)
        for (int k = 0; k < 12; k++) {
            char canon[64];
            snprintf(canon, sizeof canon, kinds[k], l);
            const sm_st_tensor *t = sm_st_find(f, canon);
            snprintf(names[n], sizeof names[n], "transformer.h.%d.%s", l, hf[k]);
            sm_st_entry *x = &e[n];
            *x = (sm_st_entry){names[n], SM_ST_F32, t->ndim, {0}, t->data};
            if (t->ndim == 2) {   /* transpose [out, in] -> [in, out] */
                int64_t R = t->shape[0], Cc = t->shape[1];
                float *tr = malloc(sizeof *tr * (size_t)(R * Cc));
                const float *src = t->data;
                for (int64_t i = 0; i < R; i++)
                    for (int64_t j = 0; j < Cc; j++) tr[j * R + i] = src[i * Cc + j];
                x->shape[0] = Cc;
                x->shape[1] = R;
                x->data = owned[k_owned++] = tr;
            } else {
                x->shape[0] = t->shape[0];
            }
            n++;
        }
    e[n++] = (sm_st_entry){"transformer.ln_f.weight", SM_ST_F32, 1, {C}, get(f, "lnf.w", 0)};
    e[n++] = (sm_st_entry){"transformer.ln_f.bias", SM_ST_F32, 1, {C}, get(f, "lnf.b", 0)};
    cr_assert_eq(sm_st_write(path, e, n, NULL, 0, SM_ST_WRITE_PLAIN), SM_OK, "%s", sm_last_error());
    for (int i = 0; i < k_owned; i++) free(owned[i]);
}

Test(import_cli, llmc_and_hugging_face_files_score_like_the_original)
{
    char ck[300], bin[300], hf[300];
    snprintf(ck, sizeof ck, "%s/ck.st", dir);
    snprintf(bin, sizeof bin, "%s/gpt2_tiny.bin", dir);
    snprintf(hf, sizeof hf, "%s/model.safetensors", dir);
    sm_st_file *f;
    cr_assert_eq(sm_st_open(ck, &f), SM_OK, "%s", sm_last_error());
    write_llmc(f, bin);
    write_hf(f, hf);
    sm_st_close(f);
    const char *cli = sm_test_cli(), *data = sm_test_corpus();
    cr_assert_eq(sm_test_sh("%s eval --checkpoint %s --data %s -T 16 -B 8 --json | sed 's/, \"seconds.*//' > %s/a",
                            cli, ck, data, dir), 0);
    cr_assert_eq(sm_test_sh("%s eval --gpt2 %s --tokenizer byte --data %s -T 16 -B 8 --json | sed 's/, \"seconds.*//' > %s/b",
                            cli, bin, data, dir), 0);
    cr_assert_eq(sm_test_sh("%s eval --gpt2 %s --heads %d --tokenizer byte --data %s -T 16 -B 8 --json | "
                            "sed 's/, \"seconds.*//' > %s/c", cli, hf, H, data, dir), 0);
    cr_assert_eq(sm_test_sh("sed 's/\"file.*tokens/tokens/' %s/a > %s/a2 && sed 's/\"file.*tokens/tokens/' %s/b > %s/b2 && "
                            "cmp -s %s/a2 %s/b2", dir, dir, dir, dir, dir, dir), 0, "llm.c import scores exactly alike");
    cr_assert_eq(sm_test_sh("sed 's/\"file.*tokens/tokens/' %s/c > %s/c2 && cmp -s %s/a2 %s/c2", dir, dir, dir, dir), 0,
                 "Hugging Face import scores exactly alike");
    cr_assert_eq(sm_test_sh("%s generate --gpt2 %s --tokenizer byte --prompt 'And' -n 10 >/dev/null", cli, bin), 0);
    cr_assert_eq(sm_test_sh("%s generate --gpt2 %s -n 1 2>%s/err >/dev/null; grep -q 'tokenizer' %s/err", cli, bin, dir,
                            dir), 0, "GPT-2 weights without a tokenizer: the message says what to add");
}

/* Hugging Face weights do not store the head count: it comes from config.json next to them, else
 * --heads is required (no silent default that builds another model whenever it divides C). */
Test(import_cli, hugging_face_heads_come_from_config_json_or_heads)
{
    char ck[300], hf[300];
    snprintf(ck, sizeof ck, "%s/ck.st", dir);
    snprintf(hf, sizeof hf, "%s/model.safetensors", dir);
    sm_st_file *f;
    cr_assert_eq(sm_st_open(ck, &f), SM_OK, "%s", sm_last_error());
    write_hf(f, hf);
    sm_st_close(f);
    const char *cli = sm_test_cli(), *data = sm_test_corpus();
    cr_assert_eq(sm_test_sh("%s eval --gpt2 %s --tokenizer byte --data %s -T 16 2>%s/err >/dev/null", cli, hf, data, dir), 1);
    cr_assert_eq(sm_test_sh("grep -q 'no config.json next to them: add --heads N' %s/err", dir), 0,
                 "without config.json the message says to add --heads");
    cr_assert_eq(sm_test_sh("%s eval --gpt2 %s --heads %d --tokenizer byte --data %s -T 16 -B 8 --json | "
                            "sed 's/, \"seconds.*//' > %s/a", cli, hf, H, data, dir), 0);
    cr_assert_eq(sm_test_sh("printf '{\"n_head\": %d, \"n_layer\": %d, \"n_embd\": %d, \"vocab_size\": %d, \"n_positions\": %d}' "
                            "> %s/config.json", H, L, C, V, MAXT, dir), 0);
    cr_assert_eq(sm_test_sh("%s eval --gpt2 %s --tokenizer byte --data %s -T 16 -B 8 --json | sed 's/, \"seconds.*//' > %s/b",
                            cli, hf, data, dir), 0);
    cr_assert_eq(sm_test_sh("cmp -s %s/a %s/b", dir, dir), 0, "config.json's heads build the same model as --heads");
    cr_assert_eq(sm_test_sh("%s eval --gpt2 %s --heads 4 --tokenizer byte --data %s -T 16 2>%s/err >/dev/null", cli, hf,
                            data, dir), 1);
    cr_assert_eq(sm_test_sh("grep -q 'config.json says n_head 2' %s/err", dir), 0, "--heads that contradicts the config");
}
