"""Learning-curve fits: exact curves are recovered, the backtest is what it says, and the
inverse finds the images a target needs (or says it is not within reach)."""

import numpy as np
import pytest

from boxes.learning_curve import (
    backtest,
    bootstrap_fits,
    curve_fit_family,
    images_to_reach,
    one_step_errors,
    optimism,
)

SIZES = np.array([100.0, 200.0, 400.0, 800.0])


@pytest.mark.parametrize(("a", "b", "c"), [(0.9, 2.5, 0.5), (0.7, 0.8, 0.25), (0.95, 40.0, 1.0)])
def test_the_power_fit_recovers_a_known_curve_from_exact_points(a, b, c):
    values = a - b * SIZES ** (-c)
    fit = curve_fit_family("power", SIZES, values)
    assert fit.params == pytest.approx((a, b, c), abs=1e-3, rel=1e-3)
    for n in (1600.0, 3200.0):
        assert float(fit.predict(n)) == pytest.approx(a - b * n ** (-c), abs=1e-3)
    assert fit.rmse < 1e-6


def test_the_logarithmic_fit_recovers_a_known_curve():
    values = 0.1 + 0.08 * np.log(SIZES)
    fit = curve_fit_family("logarithmic", SIZES, values)
    assert fit.params == pytest.approx((0.1, 0.08), abs=1e-9)


def test_the_backtest_fits_all_but_the_largest_point_and_scores_it():
    rng = np.random.default_rng(4)
    values = 0.9 - 2.5 * SIZES ** (-0.5) + rng.normal(0, 0.01, 4)
    result = backtest("logarithmic", SIZES, values)
    by_hand = curve_fit_family("logarithmic", SIZES[:3], values[:3])
    assert result.fitted_on == 3 and result.size == 800.0
    assert result.measured == values[3]
    assert result.predicted == pytest.approx(float(by_hand.predict(800.0)))
    assert result.error == pytest.approx(result.predicted - values[3])
    # the points may come in any order
    shuffled = backtest("logarithmic", SIZES[::-1], values[::-1])
    assert shuffled.predicted == pytest.approx(result.predicted)
    # the power curve needs three points to fit, so four to backtest
    assert backtest("power", SIZES[:3], values[:3]) is None


def test_images_to_reach_inverts_the_fit_or_says_it_is_out_of_reach():
    values = 0.9 - 2.5 * SIZES ** (-0.5)
    fit = curve_fit_family("power", SIZES, values)
    needed = images_to_reach(fit, 0.85, current=800.0)
    assert needed is not None and float(fit.predict(needed)) == pytest.approx(0.85, abs=1e-6)
    assert 800.0 < needed <= 8000.0
    assert images_to_reach(fit, 0.88, current=800.0) is None  # ~15,600 images: over 10x
    assert images_to_reach(fit, 0.95, current=800.0) is None  # above the asymptote: never
    assert images_to_reach(fit, 0.5, current=800.0) == 800.0  # already there


def test_bootstrap_fits_refit_each_replicate():
    rng = np.random.default_rng(0)
    base = 0.9 - 2.5 * SIZES ** (-0.5)
    replicates = base + rng.normal(0, 0.005, (50, 4))
    fits = bootstrap_fits("power", SIZES, replicates)
    assert len(fits) >= 45
    predictions = np.array([float(f.predict(1600.0)) for f in fits])
    low, high = np.quantile(predictions, [0.05, 0.95])
    assert low < 0.9 - 2.5 * 1600**-0.5 < high


def test_optimism_is_the_mean_one_step_ahead_error_floored_at_zero():
    # a curve that flattens faster than the logarithm: each step's fit runs ahead of the measure
    values = 0.9 - 2.5 * SIZES ** (-0.5)
    errors = one_step_errors("logarithmic", SIZES, values)
    by_hand = [
        float(curve_fit_family("logarithmic", SIZES[:k], values[:k]).predict(SIZES[k])) - values[k] for k in (2, 3)
    ]
    assert errors == pytest.approx(by_hand) and all(error > 0 for error in errors)
    assert optimism("logarithmic", SIZES, values) == pytest.approx(np.mean(by_hand))
    # the last step is the backtest
    assert errors[-1] == pytest.approx(backtest("logarithmic", SIZES, values).error)
    # an exact power curve: its own fit is right one step ahead
    assert optimism("power", SIZES, values) == pytest.approx(0.0, abs=1e-4)
    # a curve that speeds up: the fits lag behind, and the correction never makes them more hopeful
    rising = 0.1 + 0.0002 * SIZES
    assert all(error < 0 for error in one_step_errors("logarithmic", SIZES, rising))
    assert optimism("logarithmic", SIZES, rising) == 0.0
    # too few points to check a step
    assert optimism("power", SIZES[:3], values[:3]) is None


def test_the_corrected_target_asks_for_more_images():
    values = 0.9 - 2.5 * SIZES ** (-0.5)
    fit = curve_fit_family("logarithmic", SIZES, values)
    tau = optimism("logarithmic", SIZES, values)
    raw, corrected = images_to_reach(fit, 0.85, current=800.0), images_to_reach(fit, 0.85 + tau, current=800.0)
    assert raw is not None and corrected is not None and corrected > raw


def test_bootstrap_fits_started_from_the_point_fit_find_the_same_curves():
    rng = np.random.default_rng(1)
    base = 0.9 - 2.5 * SIZES ** (-0.5)
    replicates = base + rng.normal(0, 0.03, (40, 4))
    point = curve_fit_family("power", SIZES, base)
    cold = bootstrap_fits("power", SIZES, replicates)
    warm = bootstrap_fits("power", SIZES, replicates, start=point.params)
    assert len(warm) == len(cold) == 40
    for a, b, row in zip(cold, warm, replicates, strict=True):
        # as close to each replicate as the five starts get, and the same curve out to 4x
        assert np.sum((b.predict(SIZES) - row) ** 2) <= np.sum((a.predict(SIZES) - row) ** 2) + 1e-8
        assert float(b.predict(3200.0)) == pytest.approx(float(a.predict(3200.0)), abs=1e-3)
