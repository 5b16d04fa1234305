/* train_tiny.c — the public API end to end: build a small GPT, append its backward pass and AdamW,
 * plan it, train it for a few steps on a repeating sequence, and watch the loss fall.
 *   cc train_tiny.c $(pkg-config --cflags --libs --static smallmind) -o train_tiny */
#include <stdio.h>

#include <smallmind.h>

#define CHECK(call)                                                                          \
    do {                                                                                     \
        if ((call) != SM_OK) {                                                               \
            fprintf(stderr, "%s: %s\n", #call, sm_last_error());                             \
            return 1;                                                                        \
        }                                                                                    \
    } while (0)

int main(void)
{
    sm_gpt_config cfg;
    sm_gpt_config_default(&cfg);
    cfg.n_layer = 2, cfg.n_embd = 64, cfg.n_head = 2, cfg.context = cfg.seq = 32, cfg.batch = 4;

    sm_graph *g;
    sm_gpt_tensors io;
    sm_adamw_config ac;
    sm_adamw_tensors opt;
    CHECK(sm_graph_create(&g));
    CHECK(sm_gpt_build(g, &cfg, &io));
    CHECK(sm_graph_backward(g, io.loss));
    sm_adamw_config_default(&ac);
    ac.lr = 3e-3f;
    CHECK(sm_graph_adamw(g, &ac, &opt));

    sm_plan *plan;
    sm_runtime *rt;
    CHECK(sm_plan_create(g, NULL, &plan));
    printf("memory plan: %.1f MiB in all\n", (double)sm_plan_total_bytes(plan) / 1048576.0);
    CHECK(sm_runtime_create(g, plan, &rt));
    CHECK(sm_runtime_init_params(rt, 42));

    enum { N = 4 * 32 };
    int32_t x[N], y[N];
    for (int i = 0; i < N; i++) x[i] = "hello, world! "[i % 14], y[i] = "hello, world! "[(i + 1) % 14];
    for (int64_t step = 0; step < 30; step++) {
        float hp[SM_ADAMW_HPARAMS], loss;
        CHECK(sm_adamw_hparams(&ac, step, hp));
        CHECK(sm_runtime_set(rt, opt.hparams, hp, sizeof hp));
        CHECK(sm_runtime_set(rt, io.tokens, x, sizeof x));
        CHECK(sm_runtime_set(rt, io.targets, y, sizeof y));
        CHECK(sm_runtime_run(rt));
        CHECK(sm_runtime_get(rt, io.loss, &loss, sizeof loss));
        if (step % 5 == 0 || step == 29) printf("step %2lld  loss %.4f\n", (long long)step, loss);
    }
    sm_runtime_free(rt);
    sm_plan_free(plan);
    sm_graph_free(g);
    return 0;
}
