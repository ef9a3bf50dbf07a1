/* e2e-demo: a short training run of ResNet-15 on jet-like images made in memory, to
 * show that the model learns before any dataset exists. Each image holds a few
 * Gaussian showers; the target is the brightest shower's amplitude, which the network
 * must find through its convolutions and global max-pool. Prints the loss falling. */
#include <getopt.h>
#include <math.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>

#include "adam.h"
#include "backend.h"
#include "error.h"
#include "model.h"
#include "rng.h"

static void make_batch(Rng *r, int n, int c, int size, float *x, float *sc, float *t) {
    for (int i = 0; i < n; i++) {
        float *xi = x + (size_t)i * c * size * size;
        for (size_t k = 0; k < (size_t)c * size * size; k++) xi[k] = 0.0f;
        float best = 0.0f;
        int showers = 1 + (int)(rng_uniform(r) * 3);
        for (int s = 0; s < showers; s++) {
            float amp = rng_range(r, 0.1f, 1.0f), cy = rng_range(r, 10, size - 10),
                  cx = rng_range(r, 10, size - 10), w = rng_range(r, 1.5f, 4.0f);
            if (amp > best) best = amp;
            for (int ch = 0; ch < c; ch++)
                for (int y = (int)(cy - 3 * w); y <= (int)(cy + 3 * w); y++)
                    for (int q = (int)(cx - 3 * w); q <= (int)(cx + 3 * w); q++) {
                        if (y < 0 || q < 0 || y >= size || q >= size) continue;
                        float d2 = ((y - cy) * (y - cy) + (q - cx) * (q - cx)) / (w * w);
                        xi[((size_t)ch * size + y) * size + q] += amp * expf(-0.5f * d2);
                    }
        }
        sc[2 * i] = rng_uniform(r);
        sc[2 * i + 1] = rng_range(r, -1, 1);
        t[i] = best;
    }
}

int main(int argc, char **argv) {
    int steps = 200, batch = 16, size = 64, channels = 3, threads = 0;
    static struct option opts[] = {{"steps", 1, 0, 's'}, {"batch", 1, 0, 'b'},
                                   {"size", 1, 0, 'z'},  {"channels", 1, 0, 'c'},
                                   {"threads", 1, 0, 't'}, {"help", 0, 0, 'h'}, {0, 0, 0, 0}};
    int o;
    while ((o = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        switch (o) {
        case 's': steps = atoi(optarg); break;
        case 'b': batch = atoi(optarg); break;
        case 'z': size = atoi(optarg); break;
        case 'c': channels = atoi(optarg); break;
        case 't': threads = atoi(optarg); break;
        default:
            printf("usage: e2e-demo [--steps N] [--batch B] [--size PIXELS] [--channels C] "
                   "[--threads T]\nTrains ResNet-15 on in-memory jet-like images and prints "
                   "the loss.\n");
            return o == 'h' ? 0 : 2;
        }
    }
    if (steps <= 0) {
        fprintf(stderr, "e2e-demo: --steps must be positive\n");
        return 2;
    }
    ModelConfig cfg = model_default_config(batch);
    cfg.in_channels = channels;
    cfg.height = cfg.width = size;
    BackendOptions bo = {.device = "cpu", .threads = threads};
    NetOps *ops = net_backend_create(&bo);
    Model *m = NULL;
    Adam adam;
    if (!ops || model_create(&m, &cfg, ops) || model_init(m, 1) ||
        adam_create(&adam, ops, model_arena_size(m), adam_default_hyper())) {
        fprintf(stderr, "e2e-demo: %s\n", net_error());
        return 1;
    }
    Rng rng;
    rng_seed(&rng, 42);
    float *x = malloc(sizeof(float) * batch * channels * size * size);
    float *sc = malloc(sizeof(float) * 2 * batch), *t = malloc(sizeof(float) * batch);
    printf("e2e-demo: ResNet-15, %zu parameters, %dx%dx%d images, batch %d, %d steps\n",
           model_count_params(&cfg), channels, size, size, batch, steps);
    double t0 = omp_get_wtime(), window = 0.0;
    int every = steps >= 10 ? steps / 10 : 1;
    for (int s = 1; s <= steps; s++) {
        make_batch(&rng, batch, channels, size, x, sc, t);
        float loss;
        if (model_forward(m, batch, x, sc) || model_loss(m, t, NULL) || model_backward(m) ||
            adam_step(&adam, model_params(m), model_grads(m)) || model_loss_value(m, &loss)) {
            fprintf(stderr, "e2e-demo: %s\n", net_error());
            return 1;
        }
        if (!isfinite(loss)) {
            fprintf(stderr, "e2e-demo: loss is %g at step %d\n", loss, s);
            return 1;
        }
        window += loss;
        if (s % every == 0) {
            double mean = window / every;
            printf("step %4d  loss %.4f  %.1f samples/s\n", s, mean,
                   s * batch / (omp_get_wtime() - t0));
            window = 0.0;
        }
    }
    free(x), free(sc), free(t);
    adam_free(&adam);
    model_free(m);
    ops->destroy(ops);
    return 0;
}
