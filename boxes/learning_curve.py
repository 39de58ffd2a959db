"""Learning curves: how a model's figure grows with its training images, fitted and
extrapolated (no Django).

Mahmood et al., "How Much More Data Do I Need?" (CVPR 2022), compare a family of curves fitted
to a few points of score against training set size, and find that the power law, fitted on
small sizes, tends to misjudge how much more data a target needs; they fit several members,
check them by backtesting, and collect in rounds. Quorum fits two members by least squares:

- power (saturating): y = a - b * n^(-c), with b > 0 and c > 0 (approaches a from below);
- logarithmic: y = a + b * ln(n) (never saturates: the optimistic one).

`backtest` fits on every point but the largest and reports its error there (predicted
minus measured); `images_to_reach` inverts a fit; intervals come from refitting bootstrap
replicates of the points.

The correction: Mahmood et al. estimate the data for a target V* as the data for V* + tau,
with tau learned from earlier tasks, because the fits tend to be optimistic. Quorum learns
tau from the curve itself: `optimism` is the mean error of the fit one step ahead (fitted on
the first k points, predicting point k + 1, for every k the family can fit), floored at 0,
so a curve whose fits ran ahead of the measures asks for more data, and one whose fits
lagged behind is not made more hopeful.
"""

import math
from dataclasses import dataclass

import numpy as np
from scipy.optimize import curve_fit

FAMILIES = ("power", "logarithmic")


def _power(n, a, b, c):
    return a - b * np.power(n, -c)


def _logarithmic(n, a, b):
    return a + b * np.log(n)


@dataclass(frozen=True)
class CurveFit:
    family: str
    params: tuple[float, ...]
    rmse: float

    def predict(self, n) -> np.ndarray:
        n = np.asarray(n, dtype=float)
        if self.family == "power":
            return _power(n, *self.params)
        return _logarithmic(n, *self.params)


def curve_fit_family(family: str, sizes, values, *, start: tuple[float, ...] | None = None) -> CurveFit:
    """Least-squares fit of `family` to (size, value) points; at least 2 points (3 for power).
    `start`: the parameters of a fit to nearby points (a bootstrap replicate's point fit),
    tried first; the power curve then needs no other starts when it converges from there."""
    n = np.asarray(sizes, dtype=float)
    y = np.asarray(values, dtype=float)
    if family == "logarithmic":
        slope, intercept = np.polyfit(np.log(n), y, 1)
        params = (float(intercept), float(slope))
    elif family == "power":
        if len(n) < 3:
            raise ValueError("The power curve needs at least 3 points.")
        params = _power_fit(n, y, start=start)
    else:
        raise ValueError(f"Unknown family {family!r}; one of {FAMILIES}.")
    fit = CurveFit(family=family, params=params, rmse=0.0)
    residual = fit.predict(n) - y
    return CurveFit(family=family, params=params, rmse=float(np.sqrt(np.mean(residual**2))))


def _power_fit(n: np.ndarray, y: np.ndarray, *, start=None) -> tuple[float, float, float]:
    """a - b n^-c from a few starts of c (the fit is not convex); the best of them. From a
    given `start` alone when the solver converges there."""
    # n is scaled to the largest size for the solver: b then absorbs scale^-c
    scale = float(np.max(n))
    x = n / scale
    a0 = float(np.max(y)) + 0.05
    b0 = max(a0 - float(np.min(y)), 1e-3)
    starts = [(a0, b0, c0) for c0 in (0.1, 0.3, 0.5, 1.0, 2.0)]
    if start is not None:
        a, b, c = start
        guess = (min(max(a, -10.0), 10.0), min(max(b * scale ** (-c), 0.0), 1e3), min(max(c, 1e-4), 10.0))
        fitted = _power_solve(x, y, guess)
        if fitted is not None:
            a, b, c = fitted[0]
            return float(a), float(b) * scale**c, float(c)
    best, best_cost = None, math.inf
    for p0 in starts:
        fitted = _power_solve(x, y, p0)
        if fitted is not None and fitted[1] < best_cost:
            (a, b, c), best_cost = fitted
            best = (float(a), float(b) * scale**c, float(c))
    if best is None:
        raise ValueError("The power curve did not converge on these points.")
    return best


def _power_solve(x: np.ndarray, y: np.ndarray, p0) -> tuple[tuple, float] | None:
    """(params, squared error) from the start `p0`; None when the solver gives up."""
    try:
        params, _ = curve_fit(_power, x, y, p0=p0, bounds=((-10.0, 0.0, 1e-4), (10.0, 1e3, 10.0)), maxfev=20000)
    except RuntimeError:
        return None
    return tuple(params), float(np.sum((_power(x, *params) - y) ** 2))


@dataclass(frozen=True)
class Backtest:
    family: str
    fitted_on: int  # points
    size: float  # the largest size, left out
    predicted: float
    measured: float

    @property
    def error(self) -> float:
        return self.predicted - self.measured


def backtest(family: str, sizes, values) -> Backtest | None:
    """Fit on every point but the largest; the fit's prediction there against the measure.
    None when too few points remain to fit."""
    order = np.argsort(np.asarray(sizes, dtype=float))
    n = np.asarray(sizes, dtype=float)[order]
    y = np.asarray(values, dtype=float)[order]
    needed = 3 if family == "power" else 2
    if len(n) - 1 < needed:
        return None
    fit = curve_fit_family(family, n[:-1], y[:-1])
    return Backtest(
        family=family, fitted_on=len(n) - 1, size=float(n[-1]), predicted=float(fit.predict(n[-1])),
        measured=float(y[-1]),
    )  # fmt: skip


def one_step_errors(family: str, sizes, values) -> list[float]:
    """Predicted minus measured at each point from the fit on the points before it (sorted by
    size), for every prefix long enough to fit; the last one is `backtest`'s error."""
    order = np.argsort(np.asarray(sizes, dtype=float))
    n = np.asarray(sizes, dtype=float)[order]
    y = np.asarray(values, dtype=float)[order]
    needed = 3 if family == "power" else 2
    errors = []
    for k in range(needed, len(n)):
        try:
            fit = curve_fit_family(family, n[:k], y[:k])
        except ValueError:
            continue
        errors.append(float(fit.predict(n[k])) - float(y[k]))
    return errors


def optimism(family: str, sizes, values) -> float | None:
    """tau: the mean one-step-ahead error, floored at 0; None when no step can be checked."""
    errors = one_step_errors(family, sizes, values)
    return max(float(np.mean(errors)), 0.0) if errors else None


def images_to_reach(fit: CurveFit, target: float, *, current: float, limit: float = 10.0) -> float | None:
    """Training images at which the fit reaches `target`; None when it does not within
    `limit` times `current` (or never does)."""
    if fit.predict(current) >= target:
        return float(current)
    if fit.family == "power":
        a, b, c = fit.params
        if a <= target or b <= 0:
            return None
        needed = (b / (a - target)) ** (1.0 / c)
    else:
        a, b = fit.params
        if b <= 0:
            return None
        needed = math.exp((target - a) / b)
    return float(needed) if needed <= limit * current else None


def bootstrap_fits(family: str, sizes, replicates, *, start: tuple[float, ...] | None = None) -> list[CurveFit]:
    """One fit per replicate (a row of values, one per size); replicates that fail to fit are
    left out. `start`: the fit to the points themselves, from which each replicate's starts."""
    fits = []
    for row in np.asarray(replicates, dtype=float):
        try:
            fits.append(curve_fit_family(family, sizes, row, start=start))
        except ValueError:
            continue
    return fits
