/* The learning rate, owned by one object (LrSchedule): ReduceLROnPlateau with
 * PyTorch's semantics (stepped once per epoch on the validation MAE by rank 0), on top
 * of an optional linear scaling by the number of ranks with a linear warm-up (Goyal et
 * al., "Accurate, Large Minibatch SGD"): lr(step) = plateau_factor * warm(step), where
 * warm ramps from the base rate to the scaled one over warmup_steps optimizer steps.
 * The checkpoint stores the schedule (checkpoint.h); Adam takes lr_at(step) each step. */
#ifndef E2E_DIST_LR_SCHEDULE_H
#define E2E_DIST_LR_SCHEDULE_H

typedef struct {
    /* torch.optim.lr_scheduler.ReduceLROnPlateau's arguments */
    int mode_max;           /* 0: 'min' (a lower metric is better), 1: 'max' */
    double factor;          /* 0.5 */
    int patience;           /* 2 */
    double threshold;       /* 1e-4 */
    int threshold_abs;      /* 0: 'rel', 1: 'abs' */
    int cooldown;           /* 0 */
    double min_lr;          /* 0 */
    double eps;             /* 1e-8: a reduction smaller than this is skipped */
} PlateauConfig;

typedef struct {
    PlateauConfig cfg;
    double best;
    int num_bad_epochs;
    int cooldown_counter;
    long last_epoch;
    double lr;              /* the plateau-controlled rate (the warm-up target) */
} Plateau;

/* The recipe's values: min, 0.5, 2, 1e-4 rel, 0, 0, 1e-8. */
PlateauConfig plateau_default_config(void);
int plateau_check_config(const PlateauConfig *c);
void plateau_init(Plateau *p, const PlateauConfig *c, double lr);
/* One epoch's metric; returns 1 when the rate was reduced. */
int plateau_step(Plateau *p, double metric);

typedef struct {
    double base;            /* the configured rate (--lr) */
    double scaled;          /* the warm-up's target: base x ranks with linear scaling,
                               else base */
    long warmup_steps;      /* optimizer steps from base to scaled (0: none) */
    Plateau plateau;        /* its lr starts at scaled; its reductions scale the ramp */
} LrSchedule;

void lr_schedule_init(LrSchedule *s, double base, double scaled, long warmup_steps,
                      const PlateauConfig *plateau);
/* The rate of optimizer step `step` (0-based, counted over the whole run): during the
 * warm-up the ramp's rate times the plateau's reductions so far, then the plateau's
 * rate. */
double lr_at(const LrSchedule *s, long step);
/* The end of an epoch with its validation metric: the plateau's step. 1 when the rate
 * was reduced. */
int lr_schedule_epoch_end(LrSchedule *s, double metric);

#endif
