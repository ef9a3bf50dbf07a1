/* A slot's buffers (slots.h): the batch's arrays from the caller's allocator where a
 * device copies from them, the reader's own working buffers from malloc; the capacity
 * for the entries of sparse rows, counted at open. */
#include "slots.h"

#include <stdlib.h>

#include "sparsefile.h"

static int cmp_ll_desc(const void *a, const void *b) {
    long long x = *(const long long *)a, y = *(const long long *)b;
    return (y > x) - (y < x);
}

int slots_count_entries(long long *entries, const RowFiles *rf, const SplitRows *sp, int batch, const char *path) {
    long long n;
    long long *rows = split_rank_rows(sp, &n), *e = malloc((size_t)(n ? n : 1) * sizeof *e);
    if (!rows || !e) {
        free(rows);
        free(e);
        return e2e_fail("%s: out of memory", path);
    }
    for (long long i = 0; i < n; i++) {
        int fi = rows_file_of(rf, rows[i]);
        const JetFile *f = &rf->file[fi];
        e[i] = f->sparse ? sparsefile_row_entries(f->sparse, rows[i] - rf->start[fi]) : 0;
    }
    qsort(e, (size_t)n, sizeof *e, cmp_ll_desc);
    *entries = 0;
    for (long long i = 0; i < n && i < batch; i++) *entries += e[i];
    free(rows);
    free(e);
    if (*entries >= 4294967296LL)
        return e2e_fail("%s: a batch of %d rows may hold %lld entries, more than 2^32", path, batch, *entries);
    return 0;
}

static void *mem_alloc(const BatchMemory *m, size_t bytes) { return m->alloc ? m->alloc(m->ctx, bytes) : malloc(bytes); }

static void mem_free(const BatchMemory *m, void *p) {
    if (!p) return;
    if (m->alloc)
        m->free(m->ctx, p);
    else
        free(p);
}

/* Buffers for rows of sparse files: their entries (x_sparse: the batch's, from the
 * caller's allocator), the planes' starts (x_sparse) or the pixels written (touched:
 * only where positions in a batch fit 32 bits). -1 when out of memory. */
static int alloc_entries(SlotEntries *t, const SlotSize *z) {
    const DatasetInfo *in = z->info;
    if (!in->sparse_files) return 0;
    const long long row_floats = (long long)in->channels * in->height * in->width;
    const size_t e = (size_t)(z->entries ? z->entries : 1);
    if (in->x_sparse) {
        t->pos = mem_alloc(&z->mem, e * sizeof(uint32_t));
        t->value = mem_alloc(&z->mem, e * sizeof(float));
        t->plane_start = mem_alloc(&z->mem, ((size_t)z->batch * in->channels + 1) * sizeof *t->plane_start);
        return t->pos && t->value && t->plane_start ? 0 : -1;
    }
    t->pos = malloc(e * sizeof(uint32_t));
    t->value = malloc(e * sizeof(float));
    if ((double)z->batch * (double)row_floats < 4294967296.0)
        t->touched = malloc(e * sizeof *t->touched);
    return t->pos && t->value ? 0 : -1;
}

int slot_alloc(Slot *s, const SlotSize *z, const char *path) {
    const DatasetInfo *in = z->info;
    const int B = z->batch, S = in->n_scalars;
    const long long row_floats = (long long)in->channels * in->height * in->width;
    const size_t stage_bytes = (size_t)B * row_floats * 2;
    /* with x_half the batch is the stage buffer itself */
    s->x = in->x_half || in->x_sparse ? NULL : mem_alloc(&z->mem, (size_t)(B * row_floats) * sizeof *s->x);
    s->scalars = S ? mem_alloc(&z->mem, (size_t)(B * S) * sizeof *s->scalars) : NULL;
    s->target = mem_alloc(&z->mem, (size_t)B * sizeof *s->target);
    s->weight = mem_alloc(&z->mem, (size_t)B * sizeof *s->weight);
    s->mass = malloc((size_t)B * sizeof *s->mass);
    s->index = malloc((size_t)B * sizeof *s->index);
    s->lrows = malloc((size_t)B * sizeof *s->lrows);
    s->stage = !z->stage ? NULL : in->x_half ? mem_alloc(&z->mem, stage_bytes) : malloc(stage_bytes);
    if ((!s->x && !in->x_half && !in->x_sparse) || (S && !s->scalars) || !s->target || !s->weight || !s->mass ||
        !s->index || !s->lrows || (z->stage && !s->stage) || alloc_entries(&s->ent, z))
        return e2e_fail("%s: out of %smemory for a batch of %d rows", path,
                        z->mem.alloc ? "the device's host (pinned) memory or " : "", B);
    return 0;
}

void slot_free(Slot *s, const SlotSize *z) {
    const DatasetInfo *in = z->info;
    mem_free(&z->mem, s->x);
    mem_free(&z->mem, s->scalars);
    mem_free(&z->mem, s->target);
    mem_free(&z->mem, s->weight);
    free(s->mass);
    free(s->index);
    free(s->lrows);
    if (in->x_half)
        mem_free(&z->mem, s->stage);
    else
        free(s->stage);
    if (in->x_sparse) {
        mem_free(&z->mem, s->ent.pos);
        mem_free(&z->mem, s->ent.value);
        mem_free(&z->mem, s->ent.plane_start);
    } else {
        free(s->ent.pos);
        free(s->ent.value);
    }
    free(s->ent.touched);
}

void slot_batch(const Slot *s, const DatasetInfo *info, int weighted, const InputPrep *prep, Batch *b) {
    *b = (Batch){.n = s->n, .x = info->x_half || info->x_sparse ? NULL : s->x,
                 .scalars = s->scalars, .target = s->target, .weight = weighted ? s->weight : NULL,
                 .mass = s->mass, .index = s->index, .x_half = info->x_half ? s->stage : NULL,
                 .prep = info->preprocessed ? NULL : prep};
    if (info->x_sparse) b->sparse = s->sparse;
}
