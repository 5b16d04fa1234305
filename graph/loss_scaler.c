/* loss_scaler.c — the host side of dynamic loss scaling: which scale S the next step's gradients
 * are multiplied by, from whether the last step's overflowed (PyTorch GradScaler's update rule,
 * torch/amp/grad_scaler.py, _amp_update_scale_). The graph side (scaled seed, found_inf, unscaled
 * and skipped updates) is autodiff.c and optimizer.c. */
#include <float.h>
#include <math.h>
#include <string.h>

#include "../base/error.h"
#include "graph.h"

void sm_loss_scaler_init(sm_loss_scaler *s, sm_loss_scale_mode mode)
{
    if (!s) return;
    memset(s, 0, sizeof *s);
    s->mode = mode;
    s->scale = mode == SM_LOSS_SCALE_OFF ? 1.0f : 65536.0f;
    s->growth_factor = 2.0f;
    s->backoff_factor = 0.5f;
    s->growth_interval = 2000;
    s->min_scale = 1.0f;
}

sm_status sm_loss_scaler_check(const sm_loss_scaler *s)
{
    if (!s) return sm_error(SM_ERR_INVALID_ARG, "loss scaler: NULL");
    if (s->mode != SM_LOSS_SCALE_OFF && s->mode != SM_LOSS_SCALE_FIXED && s->mode != SM_LOSS_SCALE_DYNAMIC)
        return sm_error(SM_ERR_INVALID_ARG, "loss scaler: mode %d is not off (0), fixed (1) or dynamic (2)", (int)s->mode);
    if (!(s->min_scale > 0.0f) || !isfinite(s->min_scale))
        return sm_error(SM_ERR_INVALID_ARG, "loss scaler: min_scale %g must be a finite number > 0", s->min_scale);
    if (!(s->scale >= s->min_scale) || !isfinite(s->scale))
        return sm_error(SM_ERR_INVALID_ARG, "loss scaler: scale %g must be finite and >= min_scale %g", s->scale,
                        s->min_scale);
    if (s->mode == SM_LOSS_SCALE_OFF && s->scale != 1.0f)
        return sm_error(SM_ERR_INVALID_ARG, "loss scaler: scale %g with scaling off (it must be 1)", s->scale);
    if (!(s->growth_factor > 1.0f) || !isfinite(s->growth_factor))
        return sm_error(SM_ERR_INVALID_ARG, "loss scaler: growth_factor %g must be a finite number > 1", s->growth_factor);
    if (!(s->backoff_factor > 0.0f && s->backoff_factor < 1.0f))
        return sm_error(SM_ERR_INVALID_ARG, "loss scaler: backoff_factor %g must be in (0, 1)", s->backoff_factor);
    if (s->growth_interval < 1)
        return sm_error(SM_ERR_INVALID_ARG, "loss scaler: growth_interval %lld must be >= 1",
                        (long long)s->growth_interval);
    if (s->growth_tracker < 0 || s->growth_tracker >= s->growth_interval || s->skipped < 0)
        return sm_error(SM_ERR_INVALID_ARG, "loss scaler: growth_tracker %lld must be in [0, growth_interval %lld) "
                        "and skipped %lld >= 0", (long long)s->growth_tracker, (long long)s->growth_interval,
                        (long long)s->skipped);
    return SM_OK;
}

sm_status sm_loss_scaler_update(sm_loss_scaler *s, int found_inf)
{
    sm_status st = sm_loss_scaler_check(s);
    if (st) return st;
    if (found_inf) {
        if (s->skipped == INT64_MAX) return sm_error(SM_ERR_INVALID_ARG, "loss scaler: the skipped count overflows");
        s->skipped++;
    }
    if (s->mode != SM_LOSS_SCALE_DYNAMIC) return SM_OK;
    if (found_inf) {
        /* the product is computed in float, as PyTorch does on its float32 scale tensor */
        float backed = s->scale * s->backoff_factor;
        s->scale = backed > s->min_scale ? backed : s->min_scale;
        s->growth_tracker = 0;
    } else if (++s->growth_tracker == s->growth_interval) {
        float grown = s->scale * s->growth_factor;
        if (isfinite(grown)) s->scale = grown;   /* PyTorch too keeps the scale when growing overflows */
        s->growth_tracker = 0;
    }
    return SM_OK;
}

sm_loss_scale_mode sm_loss_scale_auto(sm_dtype storage)
{
    return storage == SM_F16 ? SM_LOSS_SCALE_DYNAMIC : SM_LOSS_SCALE_OFF;
}
