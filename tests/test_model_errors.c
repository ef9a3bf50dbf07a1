/* Bad input at the model API: invalid shapes, zero or oversized batches, NULL
 * buffers, misuse of the call order, and backends that are not there. Each must return
 * -1 with a message that names the problem, never crash. */
#include <stdlib.h>
#include <string.h>

#include "adam.h"
#include "backend.h"
#include "check.h"
#include "cpu/cpu_backend.h"
#include "error.h"
#include "model.h"

#define EXPECT_FAIL(call, needle)                                                        \
    do {                                                                                 \
        e2e_clear_error();                                                               \
        int rc_ = (call);                                                                \
        CHECK(rc_ == -1, "%s returned %d", #call, rc_);                                  \
        CHECK(strstr(e2e_error(), needle) != NULL, "%s: message '%s' lacks '%s'", #call, \
              e2e_error(), needle);                                                      \
    } while (0)

/* Capabilities: the CPU backend declares host memory and the convolution preparation
 * (its engine choice) and nothing else; a declaration whose members are missing, or a
 * missing required op, is refused by ops_check and by model_create. */
static void test_capabilities(NetOps *cpu) {
    CHECK(cpu->caps == (OPS_HOST_MEMORY | OPS_CONV_PREPARE), "the cpu backend declares 0x%x", cpu->caps);
    CHECK(ops_check(cpu) == 0, "the cpu backend's declaration refused: %s", e2e_error());
    ModelConfig cfg = model_default_config(2);
    Model *m = NULL;
    NetOps lying = *cpu;
    lying.caps |= OPS_GRAPHS;
    EXPECT_FAIL(ops_check(&lying), "graph_begin");
    EXPECT_FAIL(model_create(&m, &cfg, &lying), "declares a capability without its member");
    lying = *cpu;
    lying.caps |= OPS_PINNED_HOST;
    EXPECT_FAIL(ops_check(&lying), "alloc_host");
    lying = *cpu;
    lying.conv2d_prepare = NULL;
    EXPECT_FAIL(ops_check(&lying), "conv2d_prepare");
    lying = *cpu;
    lying.l1_loss = NULL;
    EXPECT_FAIL(model_create(&m, &cfg, &lying), "lacks the required op 'l1_loss'");
    CHECK(m == NULL, "a model was made on a backend that failed its check");
}

/* sparse images (their entries: one pixel a sample and channel) are for GPU backends */
static void sparse_refused(Model *m, Batch hb) {
    static uint32_t starts[4 * 8 + 1];
    static uint16_t pos[4 * 8], half[4 * 8];
    float pred[4];
    for (int p = 0; p <= 4 * 8; p++) starts[p] = (uint32_t)p;
    hb.sparse = (SparseImages){.nnz = 32, .plane_start = starts, .pos = pos, .value = half, .pos_bytes = 2, .value_bytes = 2};
    EXPECT_FAIL(model_predict(m, &hb, pred), "more than one of x, x_half, sparse");
    hb.x = NULL;
    EXPECT_FAIL(model_predict(m, &hb, pred), "x_half, sparse images and prep need a GPU backend");
}

int main(void) {
    ModelConfig good = model_default_config(4);
    CHECK(model_check_config(&good) == 0, "default config refused: %s", e2e_error());
    CHECK(model_count_params(&good) == 90163, "default model has %zu parameters, want 90163",
          model_count_params(&good));
    ModelConfig c3 = good;
    c3.in_channels = 3;
    CHECK(model_count_params(&c3) == 90163 - 5 * 16 * 49, "3-channel count %zu",
          model_count_params(&c3));

    ModelConfig bad = good;
    bad.in_channels = 0;
    EXPECT_FAIL(model_check_config(&bad), "C=0");
    bad = good;
    bad.height = 5;
    EXPECT_FAIL(model_check_config(&bad), "too small");
    bad = good;
    bad.n_scalars = -1;
    EXPECT_FAIL(model_check_config(&bad), "n_scalars");
    bad = good;
    bad.max_batch = 0;
    EXPECT_FAIL(model_check_config(&bad), "max_batch");
    bad = good;
    bad.blocks = 1000;
    EXPECT_FAIL(model_check_config(&bad), "blocks");
    bad = good;
    bad.fmaps1 = -2;
    EXPECT_FAIL(model_check_config(&bad), "feature maps");
    EXPECT_FAIL(model_check_config(NULL), "NULL");
    CHECK(model_count_params(&bad) == 0, "a bad config has no parameter count");
    ModelConfig big = good;
    big.in_channels = 1895825408; /* a checkpoint's claim that overflowed int sizes (fuzz_checkpoint) */
    EXPECT_FAIL(model_check_config(&big), "at most 4096");
    big = good;
    big.width = MODEL_MAX_SIZE + 1;
    EXPECT_FAIL(model_check_config(&big), "at most 4096");
    big = good;
    big.blocks = 1895825407; /* 8 x blocks overflowed in the check itself (fuzz_checkpoint) */
    EXPECT_FAIL(model_check_config(&big), "blocks");
    big = good;
    big.height = big.width = MODEL_MAX_SIZE;
    CHECK(model_check_config(&big) == 0, "the largest size is taken: %s", e2e_error());

    /* the smallest image that survives conv0 and the pooling */
    ModelConfig tiny = good;
    tiny.height = tiny.width = 6;
    CHECK(model_check_config(&tiny) == 0, "6x6 refused: %s", e2e_error());

    BackendOptions cpu1 = {.device = "cpu", .threads = 1};
    NetOps *ops = net_backend_create(&cpu1);
    CHECK(ops != NULL, "cpu backend: %s", e2e_error());
    test_capabilities(ops);
    Model *m = (Model *)1;
    EXPECT_FAIL(model_create(&m, &good, NULL), "no backend");
    CHECK(m == NULL, "failed model_create must leave NULL");
    EXPECT_FAIL(model_create(&m, &bad, ops), "feature maps");
    EXPECT_FAIL(model_create(NULL, &good, ops), "NULL");

    CHECK(model_create(&m, &tiny, ops) == 0, "model_create: %s", e2e_error());
    float x[4 * 8 * 6 * 6] = {0}, sc[8] = {0}, t[4] = {0};
    EXPECT_FAIL(model_loss(m, t, NULL), "no forward pass");
    EXPECT_FAIL(model_backward(m), "no forward pass");
    EXPECT_FAIL(model_forward(m, 0, x, sc), "batch of 0");
    EXPECT_FAIL(model_forward(m, 5, x, sc), "1 to 4");
    EXPECT_FAIL(model_forward(m, -3, x, sc), "batch of -3");
    EXPECT_FAIL(model_forward(m, 2, NULL, sc), "images are NULL");
    EXPECT_FAIL(model_forward(m, 2, x, NULL), "scalars");
    EXPECT_FAIL(model_forward(NULL, 2, x, sc), "model is NULL");
    CHECK(model_forward(m, 4, x, sc) == 0, "forward on 6x6: %s", e2e_error());
    EXPECT_FAIL(model_loss(m, NULL, NULL), "target is NULL");
    CHECK(model_loss(m, t, NULL) == 0 && model_backward(m) == 0, "backward on 6x6: %s", e2e_error());
    Batch hb = {.n = 4, .x = x, .scalars = sc, .target = t};
    float pred[4];
    CHECK(model_train_pass(m, &hb) == 0, "train pass: %s", e2e_error());
    int nonfinite = -1, nonfinite_too = -1;
    float loss = NAN, loss_too = NAN;
    CHECK(model_grads_nonfinite(m, &nonfinite) == 0 && nonfinite == 0, "finite gradients: %d", nonfinite);
    CHECK(model_pass_result(m, &loss, &nonfinite_too) == 0 && model_loss_value(m, &loss_too) == 0 &&
              loss == loss_too && isfinite(loss) && nonfinite_too == 0,
          "the pass's result: the loss (%g, %g) and no non-finite gradient (%d)", loss, loss_too, nonfinite_too);
    model_grads(m)[model_arena_size(m) / 2] = NAN;  /* the CPU's gradients are host memory */
    CHECK(model_grads_nonfinite(m, &nonfinite) == 0 && nonfinite == 1, "a NaN gradient not found");
    CHECK(model_pass_result(m, &loss, &nonfinite_too) == 0 && nonfinite_too == 1,
          "the pass's result finds the NaN gradient");
    EXPECT_FAIL(model_grads_nonfinite(m, NULL), "NULL");
    EXPECT_FAIL(model_pass_result(m, &loss, NULL), "NULL");
    EXPECT_FAIL(model_pass_result(m, NULL, &nonfinite), "NULL");
    CHECK(model_predict(m, &hb, pred) == 0, "predict: %s", e2e_error());
    hb.n = 9;
    EXPECT_FAIL(model_train_pass(m, &hb), "1 to 4");
    hb.n = 2;
    hb.target = NULL;
    EXPECT_FAIL(model_train_pass(m, &hb), "target is NULL");
    CHECK(model_predict(m, &hb, pred) == 0, "predict needs no target: %s", e2e_error());
    /* raw binary16 input and device preprocessing are for GPU backends */
    static uint16_t half[4 * 8 * 6 * 6];
    float scale[8] = {1, 1, 1, 1, 1, 1, 1, 1};
    InputPrep prep = {.scale = scale, .threshold = 0.0f};
    hb.x_half = half;
    EXPECT_FAIL(model_predict(m, &hb, pred), "more than one of x, x_half, sparse");
    hb.x = NULL;
    EXPECT_FAIL(model_predict(m, &hb, pred), "x_half, sparse images and prep need a GPU backend");
    hb.x = x;
    hb.x_half = NULL;
    hb.prep = &prep;
    EXPECT_FAIL(model_predict(m, &hb, pred), "x_half, sparse images and prep need a GPU backend");
    hb.prep = NULL;
    sparse_refused(m, hb);
    hb.x = NULL;
    EXPECT_FAIL(model_predict(m, &hb, pred), "images are NULL");
    EXPECT_FAIL(model_train_pass(m, NULL), "batch is NULL");
    EXPECT_FAIL(model_stage_batch(m, NULL), "batch is NULL");
    EXPECT_FAIL(model_stage_batch(NULL, &hb), "model is NULL");
    EXPECT_FAIL(model_predict(m, &hb, NULL), "prediction buffer is NULL");
    EXPECT_FAIL(model_set_params(m, NULL), "NULL");
    EXPECT_FAIL(model_init(NULL, 1), "NULL");
    CHECK(model_find_tensor(m, "layer2.0.shortcut.weight") != NULL, "shortcut tensor missing");
    CHECK(model_find_tensor(m, "layer1.0.shortcut.weight") == NULL,
          "identity blocks must not carry the unused shortcut");
    CHECK(model_tensor(m, -1) == NULL && model_tensor(m, 1000) == NULL, "tensor index bounds");

    Adam a;
    EXPECT_FAIL(adam_create(&a, ops, 0, adam_default_hyper()), "no parameters");
    AdamHyper h = adam_default_hyper();
    h.beta1 = 1.0f;
    EXPECT_FAIL(adam_create(&a, ops, 10, h), "betas");
    h = adam_default_hyper();
    h.eps = NAN;
    EXPECT_FAIL(adam_create(&a, ops, 10, h), "eps");
    CHECK(adam_create(&a, ops, model_arena_size(m), adam_default_hyper()) == 0, "adam: %s",
          e2e_error());
    EXPECT_FAIL(adam_step(&a, 1e-3f, NULL, model_grads(m)), "NULL");
    EXPECT_FAIL(adam_step(&a, -1.0f, model_params(m), model_grads(m)), "learning rate");
    EXPECT_FAIL(adam_step(&a, NAN, model_params(m), model_grads(m)), "learning rate");
    CHECK(a.step == 0, "a refused step counted: %ld", a.step);
    float *mh = calloc(a.n, sizeof(float)), *vh = calloc(a.n, sizeof(float));
    for (size_t i = 0; i < a.n; i++) mh[i] = (float)i, vh[i] = 0.5f * (float)i;
    CHECK(adam_set_moments(&a, mh, vh) == 0, "adam_set_moments: %s", e2e_error());
    memset(mh, 0, a.n * sizeof(float));
    memset(vh, 0, a.n * sizeof(float));
    CHECK(adam_get_moments(&a, mh, vh) == 0 && mh[a.n - 1] == (float)(a.n - 1) &&
          vh[a.n - 1] == 0.5f * (float)(a.n - 1), "the moments do not round-trip");
    EXPECT_FAIL(adam_get_moments(&a, NULL, vh), "NULL");
    free(mh), free(vh);
    adam_free(&a);
    model_free(m);
    ops->destroy(ops);

    if (!net_has_cuda()) {
        BackendOptions cuda = {.device = "cuda"};
        CHECK(net_backend_create(&cuda) == NULL, "cuda backend in a CPU-only build");
        CHECK(strstr(e2e_error(), "USE_CUDA") != NULL, "message: %s", e2e_error());
    } else {  /* a CUDA build: a backend when there is a GPU, else a message saying so */
        BackendOptions cuda = {.device = "cuda", .precision = "fp32"};
        NetOps *g = net_backend_create(&cuda);
        if (g)
            g->destroy(g);
        else
            CHECK(strstr(e2e_error(), "no GPU") != NULL, "message: %s", e2e_error());
        BackendOptions bad_prec = {.device = "cuda", .precision = "fp8"};
        CHECK(net_backend_create(&bad_prec) == NULL && strstr(e2e_error(), "fp8") != NULL,
              "an unknown cuda precision must be refused by name: %s", e2e_error());
    }
    BackendOptions tpu = {.device = "tpu"}, bf16 = {.device = "cpu", .precision = "bf16"};
    CHECK(net_backend_create(&tpu) == NULL, "unknown backend accepted");
    CHECK(strstr(e2e_error(), "tpu") != NULL, "message: %s", e2e_error());
    /* bf16 on the CPU: with bf16 instructions a bf16 backend, else refused by name */
    NetOps *cpu16 = net_backend_create(&bf16);
    if (net_cpu_has_bf16()) {
        CHECK(cpu16 && ops_can(cpu16, OPS_BF16_ACTIVATIONS), "bf16 on a CPU with bf16 instructions: %s",
              cpu16 ? "no bf16 activations" : e2e_error());
    } else {
        CHECK(cpu16 == NULL && strstr(e2e_error(), "bf16") != NULL, "bf16 without bf16 instructions: %s",
              e2e_error());
    }
    if (cpu16) cpu16->destroy(cpu16);
    BackendOptions fp8 = {.device = "cpu", .precision = "fp8"};
    CHECK(net_backend_create(&fp8) == NULL && strstr(e2e_error(), "fp8"), "fp8 on the CPU: %s", e2e_error());
    NetOps *dflt = net_backend_create(NULL);
    CHECK(dflt && strcmp(dflt->name, "cpu") == 0, "default backend is not the CPU");
    if (dflt) dflt->destroy(dflt);
    return check_main_result("test_model_errors");
}
