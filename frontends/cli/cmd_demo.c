/* cmd_demo.c — `smallmind demo`, the main job of the Quick start: train a small byte-level GPT for
 * about a minute on the corpus shipped in data/, show the loss falling below the corpus's unigram
 * entropy, then generate a sample from the trained model. */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "pretrained.h"
#include "train.h"

#ifndef SM_SOURCE_DIR
#define SM_SOURCE_DIR "."
#endif

int sm_cmd_demo(int argc, char **argv)
{
    const char *cmd = "demo";
    sm_train_options o;
    sm_train_options_default(&o);
    o.spec.name = "gpt-demo";
    o.data = SM_SOURCE_DIR "/data/kjv-genesis-exodus.txt";
    o.steps = 200;
    o.max_seconds = 90;   /* a safety net on slow machines: the schedule is by steps */
    o.val_every = 50;
    o.log_every = 20;
    o.save = "demo.safetensors";
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
            printf("usage: smallmind demo [train options]\n"
                   "  Trains the byte-level gpt-demo model on data/kjv-genesis-exodus.txt for %lld steps (about a\n"
                   "  minute on 2 cores), saves demo.safetensors, and generates a sample. Any `smallmind train`\n"
                   "  option overrides the defaults (see smallmind train --help).\n", o.steps);
            return 0;
        }
    }
    int rc = sm_train_parse(cmd, argc, argv, &o);
    if (rc >= 0) return rc;
    sm_train_result r;
    rc = sm_train_run(cmd, &o, &r);
    if (rc) return rc;
    printf("\nloss: %.4f at the first step -> %.4f after %lld steps (%.0f s); validation loss %.4f\n",
           r.first_loss, r.last_loss, r.steps, r.seconds, r.val_loss);
    /* Held-out loss when there is one: a fairer figure than the last training batch's. */
    double loss = isnan(r.val_loss) ? r.last_loss : r.val_loss;
    printf("unigram entropy of the corpus: %.4f nats/token; the model's %s loss %.4f is %s it (%.2f nats/token)\n",
           r.unigram_entropy, isnan(r.val_loss) ? "training" : "validation", loss,
           loss < r.unigram_entropy ? "below" : "NOT below", fabs(r.unigram_entropy - loss));
    printf("\nsample (temperature 0.8, top-k 40, seed 1):\n");
    sm_pretrained_options p = {.checkpoint = o.save, .inference = true, .batch = 1, .threads = o.threads};
    sm_generate_options g = {.prompt = "And God said", .n_tokens = 300, .temperature = 0.8f, .top_k = 40,
                             .top_p = 0.95f, .seed = 1};
    sm_session s;
    sm_tokenizer *tok;
    if (sm_pretrained_open(&p, &s, &tok)) return sm_cli_fail(cmd, "%s", sm_last_error());
    rc = sm_generate_run(cmd, &s, tok, &g);
    sm_session_close(&s);
    sm_tokenizer_free(tok);
    return rc;
}
