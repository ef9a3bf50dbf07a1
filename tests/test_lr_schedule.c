/* The learning-rate schedule: ReduceLROnPlateau against PyTorch's own sequences
 * (fixture from tests/reference/make_schedule_fixture.py), and the linear warm-up. */
#include <string.h>

#include "check.h"
#include "error.h"
#include "lr_schedule.h"

static void plateau_cases(void) {
    FILE *f = fopen(E2E_FIXTURE_DIR "/schedule_fixture.txt", "r");
    CHECK(f != NULL, "cannot open the schedule fixture");
    if (!f) return;
    char mode[8], tmode[8];
    PlateauConfig c = plateau_default_config();
    double lr0;
    int n, cases = 0;
    while (fscanf(f, " case %7s %7s %lf %d %lf %d %lf %lf %d", mode, tmode, &c.factor, &c.patience,
                  &c.threshold, &c.cooldown, &c.min_lr, &lr0, &n) == 9) {
        c.mode_max = strcmp(mode, "max") == 0;
        c.threshold_abs = strcmp(tmode, "abs") == 0;
        double metrics[256], want[256];
        for (int i = 0; i < n; i++) fscanf(f, "%lf", &metrics[i]);
        for (int i = 0; i < n; i++) fscanf(f, "%lf", &want[i]);
        Plateau p;
        plateau_init(&p, &c, lr0);
        int mismatches = 0, reductions = 0;
        for (int i = 0; i < n; i++) {
            reductions += plateau_step(&p, metrics[i]);
            if (fabs(p.lr - want[i]) > 1e-12 * want[i]) mismatches++;
        }
        CHECK(mismatches == 0, "case %d (%s %s): %d of %d rates differ from PyTorch", cases, mode,
              tmode, mismatches, n);
        CHECK(want[n - 1] < lr0 ? reductions > 0 : reductions == 0, "case %d: reductions %d", cases,
              reductions);
        cases++;
    }
    fclose(f);
    CHECK(cases == 5, "read %d cases, want 5", cases);
}

int main(void) {
    plateau_cases();

    /* warm-up: from base to base*ranks over the steps, then the plateau's rate */
    double base = 1e-3, scaled = 4e-3;
    CHECK(fabs(warmup_lr(scaled, base, scaled, 0, 4) - (base + 0.25 * (scaled - base))) < 1e-15,
          "first warm-up step");
    CHECK(fabs(warmup_lr(scaled, base, scaled, 3, 4) - scaled) < 1e-15, "last warm-up step");
    CHECK(warmup_lr(scaled, base, scaled, 10, 4) == scaled, "after warm-up");
    CHECK(fabs(warmup_lr(scaled / 2, base, scaled, 1, 4) - 0.5 * (base + 0.5 * (scaled - base))) < 1e-15,
          "a plateau reduction during warm-up scales the ramp");
    CHECK(warmup_lr(base, base, base, 0, 0) == base, "no warm-up, no scaling");

    PlateauConfig bad = plateau_default_config();
    bad.factor = 1.0;
    CHECK(plateau_check_config(&bad) == -1 && strstr(net_error(), "factor"), "factor 1 accepted");
    bad = plateau_default_config();
    bad.patience = -1;
    CHECK(plateau_check_config(&bad) == -1 && strstr(net_error(), "patience"), "negative patience accepted");
    return check_main_result("test_lr_schedule");
}
