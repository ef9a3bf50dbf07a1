/* The learning rate (lr_schedule.h): ReduceLROnPlateau with PyTorch's semantics on top of
 * linear scaling with warm-up. */
#include "lr_schedule.h"

#include <math.h>

#include "error.h"

PlateauConfig plateau_default_config(void) {
    return (PlateauConfig){.mode_max = 0, .factor = 0.5, .patience = 2, .threshold = 1e-4,
                           .threshold_abs = 0, .cooldown = 0, .min_lr = 0.0, .eps = 1e-8};
}

int plateau_check_config(const PlateauConfig *c) {
    if (!(c->factor > 0.0 && c->factor < 1.0))
        return e2e_fail("plateau factor must be in (0, 1), got %g", c->factor);
    if (c->patience < 0) return e2e_fail("plateau patience must be >= 0, got %d", c->patience);
    if (c->cooldown < 0) return e2e_fail("plateau cooldown must be >= 0, got %d", c->cooldown);
    if (!(c->threshold >= 0.0)) return e2e_fail("plateau threshold must be >= 0, got %g", c->threshold);
    if (!(c->min_lr >= 0.0)) return e2e_fail("min_lr must be >= 0, got %g", c->min_lr);
    return 0;
}

void plateau_init(Plateau *p, const PlateauConfig *c, double lr) {
    p->cfg = *c;
    p->best = c->mode_max ? -INFINITY : INFINITY;  /* PyTorch's mode_worse */
    p->num_bad_epochs = 0;
    p->cooldown_counter = 0;
    p->last_epoch = 0;
    p->lr = lr;
}

static int is_better(const Plateau *p, double a) {
    const PlateauConfig *c = &p->cfg;
    if (!c->mode_max && !c->threshold_abs) return a < p->best * (1.0 - c->threshold);
    if (!c->mode_max) return a < p->best - c->threshold;
    if (!c->threshold_abs) return a > p->best * (c->threshold + 1.0);
    return a > p->best + c->threshold;
}

int plateau_step(Plateau *p, double metric) {
    p->last_epoch++;
    if (is_better(p, metric)) {
        p->best = metric;
        p->num_bad_epochs = 0;
    } else {
        p->num_bad_epochs++;
    }
    if (p->cooldown_counter > 0) {
        p->cooldown_counter--;
        p->num_bad_epochs = 0;  /* ignore bad epochs in cooldown */
    }
    if (p->num_bad_epochs > p->cfg.patience) {
        double old_lr = p->lr, new_lr = fmax(old_lr * p->cfg.factor, p->cfg.min_lr);
        p->cooldown_counter = p->cfg.cooldown;
        p->num_bad_epochs = 0;
        if (old_lr - new_lr > p->cfg.eps) {
            p->lr = new_lr;
            return 1;
        }
    }
    return 0;
}

void lr_schedule_init(LrSchedule *s, double base, double scaled, long warmup_steps,
                      const PlateauConfig *plateau) {
    s->base = base;
    s->scaled = scaled;
    s->warmup_steps = warmup_steps;
    plateau_init(&s->plateau, plateau, scaled);
}

double lr_at(const LrSchedule *s, long step) {
    double plateau_lr = s->plateau.lr;
    if (s->warmup_steps <= 0 || step >= s->warmup_steps) return plateau_lr;
    /* the plateau rate is relative to the scaled target: keep its reductions */
    double reduced = plateau_lr / s->scaled;
    double t = (double)(step + 1) / (double)s->warmup_steps;
    return reduced * (s->base + (s->scaled - s->base) * t);
}

int lr_schedule_epoch_end(LrSchedule *s, double metric) { return plateau_step(&s->plateau, metric); }
