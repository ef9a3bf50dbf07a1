/* libFuzzer harness of the checkpoint loader (dist/run/checkpoint.h): a valid checkpoint of
 * each version (tests/reference/checkpoint_v1.h5 and _v2.h5, and a version 3 one written
 * at start by checkpoint_write), the first byte picking which, is edited by the fuzzer's
 * bytes (h5desc.h: attributes, tensor shapes, types and values, missing objects),
 * written, and loaded: checkpoint_peek, then, when it accepts the file, checkpoint_read
 * into a model of the configuration it read. Refusals are the expected outcome; a crash
 * or a sanitizer report is a finding. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "checkpoint.h"
#include "cpu/cpu_backend.h"
#include "error.h"
#include "fuzz_common.h"
#include "h5desc.h"

#ifndef E2E_FIXTURE_DIR
#define E2E_FIXTURE_DIR "tests/reference"
#endif

static H5Desc templates[3];
static char path[512];
static NetOps *ops;

/* the fixtures' model (tests/reference/README.md), 3 channels */
static Model *small_model(void) {
    ModelConfig cfg = model_default_config(1);
    cfg.in_channels = 3;
    cfg.height = cfg.width = 8;
    cfg.blocks = 0;
    cfg.fmaps0 = 2;
    cfg.fmaps1 = 3;
    Model *m = NULL;
    return model_create(&m, &cfg, ops) ? NULL : m;
}

/* a version-3 checkpoint of that model (the one checkpoint_write writes now) */
static void write_v3(const char *out) {
    Model *m = small_model();
    fuzz_require(m != NULL, "the model is made");
    size_t na = model_arena_size(m);
    float *p = calloc(na, 4), *mo = calloc(na, 4), *v = calloc(na, 4);
    for (size_t i = 0; i < na; i++) p[i] = 0.01f * (float)(i % 97), mo[i] = 0.001f * (float)i, v[i] = 1e-4f * (float)i;
    CheckpointState st;
    memset(&st, 0, sizeof st);
    st.model = *model_config(m);
    st.train.global_step = 42;
    st.world_size = 2;
    st.batch = 8;
    st.n_scales = 3;
    for (int i = 0; i < 3; i++) st.scales[i] = 1.0f + (float)i;
    jet_inputs_default(&st.inputs, 3);
    st.zero_suppress = 1e-5f;
    st.unbias = 1;
    snprintf(st.config_json, sizeof st.config_json, "{\"epochs\": 2}");
    fuzz_require(checkpoint_write(out, &st, m, p, mo, v) == 0, "the version-3 checkpoint is written");
    free(p), free(mo), free(v);
    model_free(m);
}

int LLVMFuzzerInitialize(int *argc, char ***argv) {
    (void)argc, (void)argv;
    fuzz_setup();
    ops = net_cpu_create(1);
    char v3[512];
    fuzz_path(v3, sizeof v3, "v3.h5");
    write_v3(v3);
    const char *files[3] = {E2E_FIXTURE_DIR "/checkpoint_v1.h5", E2E_FIXTURE_DIR "/checkpoint_v2.h5", v3};
    for (int i = 0; i < 3; i++) fuzz_require(h5desc_read(&templates[i], files[i]) == 0, files[i]);
    fuzz_path(path, sizeof path, "ckpt-0000000042.h5");
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    FuzzIn in = {data, size};
    H5Desc d;
    h5desc_copy(&d, &templates[fi_u8(&in) % 3]);
    h5desc_edit(&d, &in, 16);
    int written = h5desc_write(&d, path) == 0;
    h5desc_free(&d);
    CheckpointState *st = calloc(1, sizeof *st);
    if (written && st && checkpoint_peek(path, st) == 0) {
        ModelConfig cfg = st->model;
        cfg.max_batch = 1;
        Model *m = NULL;
        /* a model of gigabytes of activations is refused by malloc, not found by fuzzing */
        double act = (double)cfg.height * cfg.width * (cfg.in_channels + cfg.fmaps0 + cfg.fmaps1);
        if (act < 64e6 && model_create(&m, &cfg, ops) == 0) {
            size_t na = model_arena_size(m);
            float *p = calloc(na, 4), *mo = calloc(na, 4), *v = calloc(na, 4);
            if (p && mo && v) checkpoint_read(path, st, m, p, mo, v);
            free(p), free(mo), free(v);
            model_free(m);
        }
    }
    free(st);
    e2e_clear_error();
    return 0;
}
