/* The learning-rate schedule: ReduceLROnPlateau against PyTorch's own sequences
 * (fixture from tests/reference/make_schedule_fixture.py), and the schedule object
 * (lr_at): the linear warm-up with plateau reductions on top. */
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
    PlateauConfig pc = plateau_default_config();
    LrSchedule s;
    lr_schedule_init(&s, base, scaled, 4, &pc);
    CHECK(s.plateau.lr == scaled, "the plateau starts at the scaled rate");
    CHECK(fabs(lr_at(&s, 0) - (base + 0.25 * (scaled - base))) < 1e-15, "first warm-up step");
    CHECK(fabs(lr_at(&s, 3) - scaled) < 1e-15, "last warm-up step");
    CHECK(lr_at(&s, 10) == scaled, "after warm-up");
    pc.patience = 0;
    lr_schedule_init(&s, base, scaled, 4, &pc);
    CHECK(lr_schedule_epoch_end(&s, 10.0) == 0 && lr_schedule_epoch_end(&s, 11.0) == 1,
          "a worse epoch with patience 0 reduces the rate");
    CHECK(s.plateau.lr == scaled / 2, "reduced to %g", s.plateau.lr);
    CHECK(fabs(lr_at(&s, 1) - 0.5 * (base + 0.5 * (scaled - base))) < 1e-15,
          "a plateau reduction during warm-up scales the ramp");
    CHECK(lr_at(&s, 4) == scaled / 2, "after warm-up: the reduced rate");
    lr_schedule_init(&s, base, base, 0, &pc);
    CHECK(lr_at(&s, 0) == base && lr_at(&s, 1000) == base, "no warm-up, no scaling");

    PlateauConfig bad = plateau_default_config();
    bad.factor = 1.0;
    CHECK(plateau_check_config(&bad) == -1 && strstr(e2e_error(), "factor"), "factor 1 accepted");
    bad = plateau_default_config();
    bad.patience = -1;
    CHECK(plateau_check_config(&bad) == -1 && strstr(e2e_error(), "patience"), "negative patience accepted");
    return check_main_result("test_lr_schedule");
}
