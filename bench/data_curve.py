"""Data-curve benchmark: the fit's backtest error on two synthetic projects of different
difficulty, and what a 4-point curve costs against the same 4 runs made plain, in the
same run.

Projects: 80 street scenes of 320 x 192 (the starter checkpoint's scale) annotated by a
simulated panel of 3; "easy" in sun and overcast, "hard" across every weather (night
included), setting and resolution of the vocabulary. Each curve repeats one run's
settings (from the starter, 320 px, 8 epochs, batch 8) on the fractions 1/8, 1/4, 1/2
and 1 of the train split; its runs execute one after another in this process, then the
curve's result is computed (detections, bootstrap, fits, conditions).

Printed per project: the points (train images, recall at the humans' precision, AP50),
each fit's backtest (fitted on the three smaller points, predicted against measured at
the largest) and the gain it expects from 2x the images, raw and corrected for the fit's
optimism (tau, its mean one-step-ahead error). Timing, on the easy project: the
curve (create, its 4 runs, its result) against the reference, the same 4 fractions as 4
plain runs (created and executed the same way, no curve); 3 measurements of each side,
alternating; median and range, and the ratio per pair. Target: the curve costs at most
1.25x the plain runs. Exits 1 when it misses.

    python bench/data_curve.py
"""

import statistics
import sys
import time

from _setup import django_test_database

FRACTIONS = (0.125, 0.25, 0.5, 1.0)
SETTINGS = {"imgsz": 320, "epochs": 8, "batch": 8, "patience": 8, "init": "base"}
RUNS = 3
TARGET = 1.25


def spread(values: list[float], digits: int = 1) -> str:
    return f"{statistics.median(values):.{digits}f} [{min(values):.{digits}f}, {max(values):.{digits}f}]"


def main() -> None:
    with django_test_database() as var:
        from django.conf import settings

        from demo.simulation import panel_simulate
        from demo.synthetic import condition_cycle
        from demo.synthetic_data import synthetic_images_add
        from groundtruth.computing import consensus_version_compute
        from groundtruth.services import consensus_version_create
        from projects.models import Membership, Project, Role
        from tests.factories import UserFactory
        from training.data_curves import data_curve_create, data_curve_refresh
        from training.runner import training_run_execute
        from training.services import training_run_create
        from training.starter import starter_register

        settings.QUORUM_TRAINING_DIR = var / "training"
        settings.QUORUM_TRAINING_HEARTBEAT_SECONDS = 3600  # runs execute in this process
        starter = starter_register()
        admin = UserFactory(username="bench-admin")
        easy = [{"weather": w, "setting": "street", "resolution": "hd"} for w in ("sun", "overcast")]
        projects = {}
        for name, conditions, seed in (("easy", easy, 41), ("hard", condition_cycle(), 43)):
            project = Project.objects.create(name=f"Curve {name}", overlap_k=3, split_seed=seed)
            synthetic_images_add(project=project, count=80, seed=seed, size=(320, 192), conditions=conditions)
            panel_simulate(project=project, annotators=3, fraction=1.0, seed=seed)
            Membership.objects.create(project=project, user=admin, role=Role.ADMIN)
            consensus_version_compute(version_id=consensus_version_create(project=project, user=admin).pk)
            projects[name] = project
        fields = {**SETTINGS, "base_weights": starter.pk}

        def curve_once(project):
            started = time.perf_counter()
            curve, runs = data_curve_create(project=project, user=admin, fractions=FRACTIONS, **fields)
            for run in runs:
                training_run_execute(run_id=run.pk, worker="bench")
                data_curve_refresh(curve_id=curve.pk)
            curve.refresh_from_db()
            if curve.state != "done":
                raise SystemExit(f"curve failed: {curve.error}")
            return curve, time.perf_counter() - started

        def plain_once(project):
            started = time.perf_counter()
            for fraction in FRACTIONS:
                run = training_run_create(project=project, user=admin, train_fraction=fraction, **fields)
                done = training_run_execute(run_id=run.pk, worker="bench")
                if done.state != "succeeded":
                    raise SystemExit(f"plain run failed: {done.error}")
            return time.perf_counter() - started

        print(f"data curve: 80 scenes of 320x192 per project, panel of 3, fractions {FRACTIONS}, "
              f"from the starter at 320 px, 8 epochs")  # fmt: skip
        curves, seconds = {}, {"curve": [], "plain": []}
        for name, project in projects.items():
            curve, took = curve_once(project)
            curves[name] = curve
            if name == "easy":
                seconds["curve"].append(took)
        for name, curve in curves.items():
            result = curve.result
            print(f"  {name}: val {result['val_images']} images; panel recall {result['human']['recall']:.3f}")
            for point in result["points"]:
                print(f"    {point['images']:4d} train images: recall {point['recall']:.3f} "
                      f"[{point['recall_interval'][0]:.3f}, {point['recall_interval'][1]:.3f}], AP50 {point['ap50']:.3f} "
                      f"[{point['ap50_interval'][0]:.3f}, {point['ap50_interval'][1]:.3f}]")  # fmt: skip
            for figure in ("recall", "ap50"):
                fits = result["figures"][figure]
                for family, test in fits["backtest"].items():
                    fit = fits["fits"][family]
                    gain, tau = fit["gains"]["2x"], fit["optimism"]
                    corrected = "" if tau is None else f", corrected {gain['gain_corrected']:+.3f} (tau {tau:.3f})"
                    print(f"    {figure:6} {family:11} backtest: predicted {test['predicted']:.3f} at {test['size']} "
                          f"images, measured {test['measured']:.3f}, error {test['error']:+.3f}; "
                          f"2x the images: {gain['gain']:+.3f}{corrected}")  # fmt: skip
        for turn in range(RUNS):
            seconds["plain"].append(plain_once(projects["easy"]))
            if turn + 1 < RUNS:
                seconds["curve"].append(curve_once(projects["easy"])[1])
        ratios = [c / p for c, p in zip(seconds["curve"], seconds["plain"], strict=True)]
        print(f"  time (easy): curve {spread(seconds['curve'])} s, 4 plain runs {spread(seconds['plain'])} s; "
              f"curve / plain {spread(ratios, 2)} (target <= {TARGET})")  # fmt: skip
        if statistics.median(ratios) > TARGET:
            print(f"MISSED: a curve costs {statistics.median(ratios):.2f}x its runs made plain")
            raise SystemExit(1)


if __name__ == "__main__":
    sys.exit(main())
