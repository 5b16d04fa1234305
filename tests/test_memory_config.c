/* test_memory_config.c — the memory configuration: the budget, the recommended context and its
 * window/stride, and the policies read from a real plan (recompute as applied, storage types, KV). */
#include <criterion/criterion.h>
#include <stdlib.h>
#include <string.h>

#include "smallmind.h"

Test(memory_config, without_a_plan_it_gives_the_machine_and_the_defaults)
{
    sm_memory_config c;
    cr_assert_eq(sm_memory_config_get(NULL, 0, &c), SM_OK, "%s", sm_last_error());
    cr_assert(!c.budget_given && c.budget == c.sys.budget_auto && c.budget > 0);
    cr_assert_eq(c.context, sm_recommended_context(c.budget));
    int64_t W, S;
    sm_windows_default(c.context, &W, &S);
    cr_assert(c.window == W && c.stride == S && !c.from_plan && c.recompute_applied == SM_RECOMPUTE_NONE);
    char *text;
    cr_assert_eq(sm_memory_config_report(&c, SM_REPORT_TEXT, &text), SM_OK);
    cr_assert(strstr(text, "budget auto") && strstr(text, "windows") && strstr(text, "KV cache"), "%s", text);
    free(text);
}

Test(memory_config, with_a_plan_it_reads_the_plan)
{
    sm_graph *g;
    sm_gpt_config cfg = {.vocab = 64, .context = 32, .n_layer = 4, .n_head = 2, .n_embd = 32, .mlp_ratio = 4,
                         .tied_embeddings = 1, .batch = 1, .seq = 32, .with_loss = 1};
    sm_gpt_tensors io;
    cr_assert_eq(sm_graph_create(&g), SM_OK);
    cr_assert_eq(sm_gpt_build(g, &cfg, &io), SM_OK);
    cr_assert_eq(sm_graph_backward(g, io.loss), SM_OK);
    sm_plan_options po;
    sm_plan_options_default(&po);
    cr_assert_eq(sm_recompute_parse("every:2", &po.recompute), SM_OK);
    sm_plan *p;
    cr_assert_eq(sm_plan_create(g, &po, &p), SM_OK, "%s", sm_last_error());
    sm_memory_config c;
    uint64_t budget = (uint64_t)16 << 30;
    cr_assert_eq(sm_memory_config_get(p, budget, &c), SM_OK, "%s", sm_last_error());
    cr_assert(c.from_plan && c.budget_given && c.budget == budget);
    cr_assert_eq(c.context, 32768, "the table's 16 GiB anchor");
    cr_assert(c.window == 4096 && c.stride == 2048);
    cr_assert(c.recompute.kind == SM_RECOMPUTE_EVERY && c.recompute_applied == SM_RECOMPUTE_EVERY && c.recompute_every == 2);
    const sm_graph *lg = sm_plan_graph(p);
    int floats = 0;
    for (sm_tensor t = 0; t < sm_graph_tensor_count(lg); t++) {
        sm_dtype dt;
        sm_tensor_info(lg, t, NULL, &dt, NULL, NULL, NULL);
        floats += dt != SM_I32;
    }
    cr_assert(c.n_stored[SM_F32] == floats && c.n_stored[SM_F16] == 0, "every float tensor is f32 under fp32");
    cr_assert(c.n_kv == 0 && c.kv_bytes == 0 && c.plan_estimate == sm_plan_estimate(p));
    char *json;
    cr_assert_eq(sm_memory_config_report(&c, SM_REPORT_JSON, &json), SM_OK);
    cr_assert(strstr(json, "\"recompute_applied\": \"every:2\"") && strstr(json, "\"precision\": \"f32\"") &&
              strstr(json, "\"precision_policy\": \"fp32\""), "%s", json);
    free(json);
    sm_plan_free(p);
    /* a bf16 plan: its policy, and the saved activations it stores in bf16 */
    po.precision = SM_PRECISION_BF16;
    cr_assert_eq(sm_plan_create(g, &po, &p), SM_OK, "%s", sm_last_error());
    cr_assert_eq(sm_memory_config_get(p, budget, &c), SM_OK, "%s", sm_last_error());
    cr_assert(c.precision == SM_PRECISION_BF16 && c.n_stored[SM_BF16] > 0 && c.n_stored[SM_F32] > 0);
    cr_assert_eq(sm_memory_config_report(&c, SM_REPORT_JSON, &json), SM_OK);
    cr_assert(strstr(json, "\"precision_policy\": \"bf16\"") && strstr(json, "\"precision\": \"f32+bf16\""), "%s",
              json);
    free(json);
    cr_assert_eq(sm_memory_config_report(&c, SM_REPORT_TEXT, &json), SM_OK);
    cr_assert(strstr(json, "precision   bf16: f32 ("), "%s", json);
    free(json);
    sm_plan_free(p);
    sm_graph_free(g);
}
