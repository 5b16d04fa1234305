/* test_sampler.c — temperature / top-k / top-p sampling. */
#include <criterion/criterion.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "frontends/sampler.h"

static float logits[5] = {1.0f, 3.0f, 2.0f, -1.0f, 2.5f};
static char work[SM_SAMPLER_WORK(5)];

Test(sampler, greedy_and_top1_are_argmax)
{
    sm_sampler s = {.temperature = 0, .top_k = 0, .top_p = 1, .seed = 1};
    int32_t t;
    cr_assert_eq(sm_sampler_pick(&s, logits, 5, 0, work, &t), SM_OK);
    cr_assert_eq(t, 1);
    s.temperature = 1.5f;
    s.top_k = 1;
    for (int i = 0; i < 50; i++) {
        sm_sampler_pick(&s, logits, 5, (uint64_t)i, work, &t);
        cr_assert_eq(t, 1);
    }
}

Test(sampler, frequencies_follow_the_softmax)
{
    sm_sampler s = {.temperature = 1, .top_k = 0, .top_p = 1, .seed = 9};
    int count[5] = {0}, n = 40000;
    double z = 0, p[5];
    for (int i = 0; i < 5; i++) z += exp(logits[i]);
    for (int i = 0; i < 5; i++) p[i] = exp(logits[i]) / z;
    for (int i = 0; i < n; i++) {
        int32_t t;
        sm_sampler_pick(&s, logits, 5, (uint64_t)i, work, &t);
        count[t]++;
    }
    /* 4 standard deviations of a binomial count */
    for (int i = 0; i < 5; i++)
        cr_assert(fabs(count[i] - n * p[i]) < 4 * sqrt(n * p[i] * (1 - p[i])) + 1, "token %d: %d vs %.0f", i, count[i],
                  n * p[i]);
}

Test(sampler, top_k_and_top_p_cut_the_tail)
{
    sm_sampler s = {.temperature = 1, .top_k = 2, .top_p = 1, .seed = 3};
    for (int i = 0; i < 500; i++) {
        int32_t t;
        sm_sampler_pick(&s, logits, 5, (uint64_t)i, work, &t);
        cr_assert(t == 1 || t == 4, "top-2 keeps tokens 1 and 4, got %d", t);
    }
    /* p(1) ~ 0.48: top_p 0.3 keeps token 1 alone */
    s.top_k = 0;
    s.top_p = 0.3f;
    for (int i = 0; i < 200; i++) {
        int32_t t;
        sm_sampler_pick(&s, logits, 5, (uint64_t)i, work, &t);
        cr_assert_eq(t, 1);
    }
}

Test(sampler, same_seed_same_draws_and_bad_args)
{
    sm_sampler s;
    sm_sampler_default(&s);
    int32_t a, b;
    for (int i = 0; i < 20; i++) {
        sm_sampler_pick(&s, logits, 5, (uint64_t)i, work, &a);
        sm_sampler_pick(&s, logits, 5, (uint64_t)i, work, &b);
        cr_assert_eq(a, b);
    }
    s.top_p = 0;
    cr_assert_eq(sm_sampler_pick(&s, logits, 5, 0, work, &a), SM_ERR_INVALID_ARG);
}

/* Each option out of range is refused, naming the option and its range. */
Test(sampler, options_are_checked_one_by_one)
{
    struct {
        sm_sampler s;
        const char *want;
    } bad[] = {
        {{.temperature = -0.5f, .top_k = 0, .top_p = 1}, "temperature is -0.5; it must be a finite number >= 0"},
        {{.temperature = INFINITY, .top_k = 0, .top_p = 1}, "temperature is inf"},
        {{.temperature = NAN, .top_k = 0, .top_p = 1}, "temperature is nan"},
        {{.temperature = 1, .top_k = -1, .top_p = 1}, "top_k is -1; it must be >= 0"},
        {{.temperature = 1, .top_k = 0, .top_p = 2}, "top_p is 2; it must be in (0, 1]"},
        {{.temperature = 1, .top_k = 0, .top_p = NAN}, "top_p is nan"},
    };
    int32_t t;
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        cr_assert_eq(sm_sampler_check(&bad[i].s), SM_ERR_INVALID_ARG, "case %zu", i);
        cr_assert(strstr(sm_last_error(), bad[i].want), "'%s' lacks '%s'", sm_last_error(), bad[i].want);
        cr_assert_eq(sm_sampler_pick(&bad[i].s, logits, 5, 0, work, &t), SM_ERR_INVALID_ARG);
    }
    sm_sampler ok = {.temperature = 0, .top_k = 0, .top_p = 1};
    cr_assert_eq(sm_sampler_check(&ok), SM_OK);
}

/* NaN logits (a model whose numbers broke) are an error, not token 0 (a NUL byte printed). */
Test(sampler, nan_logits_are_refused)
{
    float nan_logits[5] = {NAN, NAN, NAN, NAN, NAN}, one_nan[5] = {1, 2, NAN, 0, 0};
    for (int temp = 0; temp < 2; temp++) {
        sm_sampler s = {.temperature = (float)temp, .top_k = 0, .top_p = 1, .seed = 1};
        int32_t t;
        cr_assert_eq(sm_sampler_pick(&s, nan_logits, 5, 0, work, &t), SM_ERR_INVALID_ARG);
        cr_assert(strstr(sm_last_error(), "logit of token 0 is NaN"), "%s", sm_last_error());
        cr_assert_eq(sm_sampler_pick(&s, one_nan, 5, 0, work, &t), SM_ERR_INVALID_ARG);
        cr_assert(strstr(sm_last_error(), "logit of token 2 is NaN"), "%s", sm_last_error());
    }
}
