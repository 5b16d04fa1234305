/* train_step.c — one optimizer step of a training graph: what every training loop (the CLI's, a C
 * user's) does around sm_runtime_run, in the one order that makes resumed and loss-scaled runs
 * reproducible: the step's hyperparameters and scale in, one run, the loss and overflow flag out. */
#include <stdbool.h>
#include "../base/error.h"
#include "smallmind.h"

sm_status sm_train_step(sm_runtime *rt, const sm_train_tensors *t, const sm_adamw_config *cfg, int64_t step,
                        sm_loss_scaler *sc, const int32_t *x, const int32_t *y, size_t n, sm_train_step_result *out)
{
    if (!rt || !t || !cfg || !x || !y || !out || step < 0)
        return sm_error(SM_ERR_INVALID_ARG, "sm_train_step: a NULL argument or a negative step");
    const bool scaled = t->opt.loss_scale != SM_NO_TENSOR;
    if (scaled != (t->opt.found_inf != SM_NO_TENSOR))
        return sm_error(SM_ERR_INVALID_ARG, "sm_train_step: the graph's loss scale and overflow flag come together "
                                            "(sm_graph_backward_scaled, then sm_graph_adamw)");
    if (scaled && !sc)
        return sm_error(SM_ERR_INVALID_ARG, "sm_train_step: the graph was built with a loss scale "
                                            "(sm_graph_backward_scaled): pass a loss scaler");
    const int64_t skipped = sc ? sc->skipped : 0;
    if (skipped > step)
        return sm_error(SM_ERR_INVALID_ARG, "sm_train_step: %lld steps skipped before step %lld", (long long)skipped,
                        (long long)step);
    out->scale = scaled ? sc->scale : 1.0f;
    out->skipped = 0;
    float found = 0.0f;
    sm_status st = sm_adamw_hparams_skipped(cfg, step, skipped, out->hparams);
    if (!st) st = sm_runtime_set(rt, t->opt.hparams, out->hparams, sizeof out->hparams);
    if (!st && scaled) st = sm_runtime_set(rt, t->opt.loss_scale, &out->scale, sizeof out->scale);
    if (!st) st = sm_runtime_set(rt, t->tokens, x, n * sizeof *x);
    if (!st) st = sm_runtime_set(rt, t->targets, y, n * sizeof *y);
    if (!st) st = sm_runtime_run(rt);
    if (!st) st = sm_runtime_get(rt, t->loss, &out->loss, sizeof out->loss);
    if (!st && scaled) st = sm_runtime_get(rt, t->opt.found_inf, &found, sizeof found);
    if (!st && scaled) {
        out->skipped = found != 0.0f;
        st = sm_loss_scaler_update(sc, out->skipped);
    }
    return st;
}
