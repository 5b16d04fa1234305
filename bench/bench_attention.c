/* bench_attention.c — forward and backward time of the tiled causal attention kernels, printed as JSON.
 *
 *   bench_attention                      the two standard shapes, 1 and 2 threads
 *   bench_attention B T C H [span]       one shape, 1 and 2 threads
 *
 * FLOPs: the forward's two products over the causal half, 4·B·T²·C/2 (for a window of span keys,
 * 4·B·T·span·C instead, roughly). "bwd_gflops" uses the usual 2.5× forward (5 products: S, dP, dV,
 * dK, dQ); the kernel also recomputes the forward once for the softmax statistics, so it executes
 * 3.5× forward and "bwd_exec_gflops" counts that. Each time is the best of several runs, each run a
 * whole parallel region as the executor would open it.
 */
#include <math.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>

#include "ops/attention_kernel.h"

typedef struct cfg {
    int B, T, C, H, span;
} cfg;

static void fill(float *x, size_t n, unsigned seed)
{
    unsigned s = seed;
    for (size_t i = 0; i < n; i++) {
        s = s * 1664525u + 1013904223u;
        x[i] = (float)(s >> 8) / (float)(1u << 24) * 2.0f - 1.0f;
    }
}

/* Best seconds of `reps` runs (after one warm-up) of the forward (fwd = 1) or backward with n threads. */
static double time_it(int fwd, int n, const cfg *c, const float *qkv, const float *dout, float *y, void *w, int reps)
{
    double best = INFINITY;
    for (int r = -1; r < reps; r++) {
        const double t0 = omp_get_wtime();
#pragma omp parallel num_threads(n)
        {
            if (fwd) sm_attention_forward(qkv, y, c->B, c->T, c->C, c->H, c->span, w);
            else sm_attention_backward(qkv, dout, y, c->B, c->T, c->C, c->H, c->span, w);
        }
        const double dt = omp_get_wtime() - t0;
        if (r >= 0 && dt < best) best = dt;
    }
    return best;
}

int main(int argc, char **argv)
{
    cfg cfgs[2] = {{8, 256, 384, 6, 0}, {1, 1024, 768, 12, 0}};
    int ncfg = 2;
    if (argc >= 5) {
        cfgs[0] = (cfg){atoi(argv[1]), atoi(argv[2]), atoi(argv[3]), atoi(argv[4]), argc >= 6 ? atoi(argv[5]) : 0};
        ncfg = 1;
        if (cfgs[0].B < 1 || cfgs[0].T < 1 || cfgs[0].H < 1 || cfgs[0].C % cfgs[0].H) {
            fprintf(stderr, "usage: %s [B T C H [span]] with C a multiple of H\n", argv[0]);
            return 2;
        }
    }
    printf("{\"bench\": \"attention\", \"results\": [\n");
    for (int i = 0; i < ncfg; i++) {
        const cfg *c = &cfgs[i];
        const size_t n_in = (size_t)c->B * c->T * 3 * c->C, n_out = (size_t)c->B * c->T * c->C;
        const size_t fws = sm_attention_workspace(c->T, c->C, c->H),
                     bws = sm_attention_backward_workspace(c->T, c->C, c->H);
        float *qkv = malloc(n_in * sizeof *qkv), *dout = malloc(n_out * sizeof *dout);
        float *out = malloc(n_out * sizeof *out), *dqkv = malloc(n_in * sizeof *dqkv);
        void *w = malloc((fws > bws ? fws : bws) * 2);
        if (!qkv || !dout || !out || !dqkv || !w) {
            fprintf(stderr, "out of memory\n");
            return 1;
        }
        fill(qkv, n_in, 1), fill(dout, n_out, 2);
        const int span = c->span > 0 && c->span < c->T ? c->span : 0;
        const double keys = span ? (double)c->T * span - 0.5 * span * (span - 1.0) : 0.5 * c->T * (c->T + 1.0);
        const double fwd_flops = 4.0 * c->B * keys * c->C;
        /* repetitions: about 0.3 s per measurement at ~50 GFLOPS, at least 3 */
        const int reps = (int)fmax(3.0, fmin(50.0, 0.3 * 50e9 / (3.5 * fwd_flops)));
        for (int n = 1; n <= 2; n++) {
            const double tf = time_it(1, n, c, qkv, dout, out, w, reps);
            const double tb = time_it(0, n, c, qkv, dout, dqkv, w, reps);
            printf("  {\"B\": %d, \"T\": %d, \"C\": %d, \"H\": %d, \"span\": %d, \"threads\": %d, "
                   "\"fwd_ms\": %.3f, \"bwd_ms\": %.3f, \"fwd_bwd_ms\": %.3f, \"fwd_gflops\": %.1f, "
                   "\"bwd_gflops\": %.1f, \"bwd_exec_gflops\": %.1f, \"fwd_bwd_gflops\": %.1f, "
                   "\"fwd_workspace_bytes\": %zu, \"bwd_workspace_bytes\": %zu}%s\n",
                   c->B, c->T, c->C, c->H, span, n, tf * 1e3, tb * 1e3, (tf + tb) * 1e3, fwd_flops / tf * 1e-9,
                   2.5 * fwd_flops / tb * 1e-9, 3.5 * fwd_flops / tb * 1e-9, 3.5 * fwd_flops / (tf + tb) * 1e-9, fws,
                   bws, (i == ncfg - 1 && n == 2) ? "" : ",");
        }
        free(qkv), free(dout), free(out), free(dqkv), free(w);
    }
    printf("]}\n");
    return 0;
}
