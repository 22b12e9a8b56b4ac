"""Always-valid two-sample tests for the canary: the mixture sequential probability ratio test (mSPRT).

The canary looks at cumulative data after every window; a fixed-sample test repeated at every look inflates false
alarms (``harness.bench.canary_sim`` measures it). The mSPRT with a normal mixture (Robbins 1970; Johari, Pekelis and
Walsh, "Always valid inference", Operations Research 2022; the method of Optimizely's stats engine) gives a p-value
that stays valid however often it is looked at and whenever one stops.

For a difference of means ``theta = mean(canary) - mean(control)`` with estimate ``d`` and variance
``V = s^2 (1 / n_c + 1 / n_k)``, ``s^2`` the variance of both arms pooled into one sample (for rates
``p (1 - p)`` of the pooled rate: the score test's variance under H0, which stays sane when one arm has seen no
event yet; a separate plug-in variance per arm gave 31% false breaches at a 1% rate), the mixture likelihood ratio
of ``H0: theta = 0`` against ``theta ~ N(0, tau^2)`` is

    Lambda = sqrt(V / (V + tau^2)) * exp(tau^2 d^2 / (2 V (V + tau^2)))

and the always-valid p-value is the running minimum of ``min(1, 1 / Lambda)`` over the looks; ``p <= alpha`` is a
rejection with type-I error at most ``alpha`` over an unbounded number of looks (for normal data; the plug-in
variance makes it approximate, hence a minimum sample per arm). Inverting it gives a confidence sequence:
``d +/- sqrt(V (V + tau^2) / tau^2 * (2 log(1/alpha) + log((V + tau^2) / V)))``.

**One-sided mixtures** (``one_sided_log_lambda``, ``one_sided_half_width``): the canary's rule asks one-sided
questions ("is the canary worse than control by more than the margin?"), so each side has its own mixture, a
half-normal over the alternative side only: for ``x = d - theta0`` in the alternative's direction,

    Lambda+ = 2 Phi(x tau / sqrt(V (V + tau^2))) * Lambda(x)

a nonnegative supermartingale under every ``theta`` on the null side (Ville's inequality: the running minimum of
``1 / Lambda+`` is an always-valid p-value of the composite ``H0: theta <= theta0``). Evidence from a window when
the canary was better makes the "worse" statistic smaller, never larger: it cannot certify a later "worse" breach.
Inverted, it gives one-sided confidence sequences ``d - x*`` and ``d + x*``, ``x*`` between the two-sided
half-widths at ``2 alpha`` and ``alpha``; their running intersection over the looks (``running_bounds``) is valid
at every look at once.

``tau`` is stated per metric in units of its standard deviation (``tau = tau_sd * s``, ``s`` pooled over both arms):
``tau_sd`` is the standardized effect the test is tuned to find fastest. Pure numpy, vectorized over looks or
canaries (any broadcastable shapes).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

ALPHA = 0.05
TAU_SD = 0.1
"""Default mixture standard deviation in units of the metric's standard deviation (a 5% -> 7% rate shift is 0.09)."""
MIN_PER_ARM = 100
"""Default minimum sample per arm before a metric is gated: the normal approximation of the plug-in mSPRT needs it
(at a 5% rate, 100 requests hold 5 expected events)."""
MIN_EVENTS = 10.0
"""Default minimum expected events before a rate is gated (the larger arm's rate times the smaller arm's sample,
``harness.canary.windows.expected_events``): below it the normal mixture's plug-in variance misstates a rare
event's (0.05-0.2% rates gave 4-7% false alarms)."""


@dataclass(frozen=True)
class Sequential:
    """The mSPRT's parameters: ``alpha`` (level over all looks, per family), ``tau_sd`` (mixture sd / metric sd), the
    minimum sample per arm (``min_per_arm``) and, for rates, the minimum expected events (``min_events``) below which
    a metric is not gated."""

    alpha: float = ALPHA
    tau_sd: float = TAU_SD
    min_per_arm: int = MIN_PER_ARM
    min_events: float = MIN_EVENTS


def log_lambda(d: np.ndarray, v: np.ndarray, tau2: np.ndarray) -> np.ndarray:
    """log of the normal-mixture likelihood ratio for estimate ``d`` with variance ``v`` and mixture variance
    ``tau2`` (module docstring); 0 where ``v`` is not positive (no evidence)."""
    d, v, tau2 = np.broadcast_arrays(np.asarray(d, float), np.asarray(v, float), np.asarray(tau2, float))
    ok = (v > 0) & (tau2 > 0)
    vs = np.where(ok, v, 1.0)
    ts = np.where(ok, tau2, 1.0)
    out = 0.5 * np.log(vs / (vs + ts)) + ts * d * d / (2.0 * vs * (vs + ts))
    return np.where(ok, out, 0.0)


def p_value(d: np.ndarray, v: np.ndarray, tau2: np.ndarray) -> np.ndarray:
    """``min(1, 1 / Lambda)`` at one look (not yet the running minimum: ``always_valid``)."""
    return np.minimum(1.0, np.exp(-log_lambda(d, v, tau2)))


def always_valid(p: np.ndarray, axis: int = -1) -> np.ndarray:
    """The running minimum of per-look p-values along ``axis`` (the looks, in order)."""
    return np.minimum.accumulate(np.asarray(p, float), axis=axis)


def half_width(v: np.ndarray, tau2: np.ndarray, alpha: float | np.ndarray = ALPHA) -> np.ndarray:
    """Half-width of the ``1 - alpha`` confidence sequence around ``d`` (module docstring); inf without data."""
    v, tau2 = np.broadcast_arrays(np.asarray(v, float), np.asarray(tau2, float))
    ok = (v > 0) & (tau2 > 0)
    vs, ts = np.where(ok, v, 1.0), np.where(ok, tau2, 1.0)
    w = np.sqrt(vs * (vs + ts) / ts * (2.0 * np.log(1.0 / alpha) + np.log((vs + ts) / vs)))
    return np.where(ok, w, np.where(v == 0, 0.0, np.inf))


def one_sided_log_lambda(x: np.ndarray, v: np.ndarray, tau2: np.ndarray) -> np.ndarray:
    """log of the one-sided (half-normal) mixture likelihood ratio for ``x = d - theta0`` in the alternative's
    direction (module docstring); 0 where ``v`` is not positive (no evidence)."""
    from scipy.special import log_ndtr

    x, v, tau2 = np.broadcast_arrays(np.asarray(x, float), np.asarray(v, float), np.asarray(tau2, float))
    ok = (v > 0) & (tau2 > 0)
    vs, ts = np.where(ok, v, 1.0), np.where(ok, tau2, 1.0)
    arg = x * np.sqrt(ts) / np.sqrt(vs * (vs + ts))
    return np.where(ok, np.log(2.0) + log_ndtr(arg) + log_lambda(x, vs, ts), 0.0)


def one_sided_p(x: np.ndarray, v: np.ndarray, tau2: np.ndarray) -> np.ndarray:
    """``min(1, 1 / Lambda+)`` at one look: the one-sided p of ``H0: theta <= theta0`` for ``x = d - theta0``."""
    return np.minimum(1.0, np.exp(-one_sided_log_lambda(x, v, tau2)))


def one_sided_half_width(v: np.ndarray, tau2: np.ndarray, alpha: float | np.ndarray = ALPHA) -> np.ndarray:
    """``x*`` with ``Lambda+(x*) = 1 / alpha``: the one-sided confidence sequence's distance from ``d`` (bisection
    between the two-sided half-widths at ``2 alpha`` and ``alpha``); 0 without spread, inf without data."""
    v, tau2, a = np.broadcast_arrays(np.asarray(v, float), np.asarray(tau2, float), np.asarray(alpha, float))
    ok = (v > 0) & (tau2 > 0) & np.isfinite(v) & np.isfinite(tau2)
    vs, ts = np.where(ok, v, 1.0), np.where(ok, tau2, 1.0)
    lo, hi = half_width(vs, ts, np.minimum(2 * a, 0.999)), half_width(vs, ts, a)
    target = np.log(1.0 / a)
    for _ in range(40):
        mid = (lo + hi) / 2
        above = one_sided_log_lambda(mid, vs, ts) >= target
        lo, hi = np.where(above, lo, mid), np.where(above, mid, hi)
    return np.where(ok, hi, np.where(v == 0, 0.0, np.inf))


def running_bounds(d: np.ndarray, v: np.ndarray, tau2: np.ndarray, alpha: float | np.ndarray,
                   axis: int = -1) -> tuple[np.ndarray, np.ndarray]:
    """The one-sided lower and upper confidence sequences, each with error ``alpha`` over every look, as their
    running intersection along ``axis`` (the looks, in order): ``max`` of the lower bounds, ``min`` of the upper.
    A look without evidence (``v`` not finite or not positive, NaN ``d``) leaves the bounds where they were."""
    w = one_sided_half_width(np.nan_to_num(v, nan=np.inf), np.nan_to_num(tau2), alpha)
    d = np.asarray(d, float)
    none = ~np.isfinite(w) | ~np.isfinite(d)
    lower = np.where(none, -np.inf, np.nan_to_num(d) - np.where(none, 0.0, w))
    upper = np.where(none, np.inf, np.nan_to_num(d) + np.where(none, 0.0, w))
    return np.maximum.accumulate(lower, axis=axis), np.minimum.accumulate(upper, axis=axis)


@dataclass(frozen=True)
class Moments:
    """Sufficient statistics of one arm at one look: count, mean and (population) variance."""

    n: np.ndarray
    mean: np.ndarray
    var: np.ndarray


def moments(values: np.ndarray) -> Moments:
    """Count, mean and variance of the finite ``values`` (NaN = does not apply)."""
    x = np.asarray(values, float)
    x = x[np.isfinite(x)]
    if len(x) == 0:
        return Moments(np.asarray(0), np.asarray(np.nan), np.asarray(np.nan))
    return Moments(np.asarray(len(x)), np.asarray(x.mean()), np.asarray(x.var()))


@dataclass(frozen=True)
class Look:
    """One two-sample mSPRT look: estimate, variance, mixture variance, p-value at this look and CS half-width."""

    delta: np.ndarray
    var: np.ndarray
    tau2: np.ndarray
    p: np.ndarray
    half_width: np.ndarray


def two_sample(control: Moments, canary: Moments, params: Sequential) -> Look:
    """The mSPRT look for ``mean(canary) - mean(control)`` from each arm's moments (arrays broadcast).

    ``V`` and ``tau = tau_sd * s`` use ``s``, the standard deviation of both arms pooled into one sample; a metric with
    no variance at all (every output valid in both arms) gets ``p = 1``.
    """
    nc, nk = np.asarray(control.n, float), np.asarray(canary.n, float)
    with np.errstate(invalid="ignore", divide="ignore"):
        d = canary.mean - control.mean
        pooled = (nc * control.var + nk * canary.var + nc * nk / (nc + nk) * d * d) / (nc + nk)
        v = pooled * (1.0 / nc + 1.0 / nk)
    tau2 = (params.tau_sd ** 2) * pooled
    p = p_value(np.nan_to_num(d), np.nan_to_num(v), np.nan_to_num(tau2))
    return Look(d, v, tau2, p, half_width(np.nan_to_num(v), np.nan_to_num(tau2), params.alpha))


def paired(diff: Moments, params: Sequential) -> Look:
    """The mSPRT look for the mean of paired differences ``canary - control`` (golden items both versions answered):
    ``V = s_d^2 / n`` with ``s_d`` the differences' sd, ``tau = tau_sd * s_d``. Identical answers (no spread) give
    ``V = 0``: the change is read as exactly the observed mean (a zero-width sequence), as offline."""
    n = np.asarray(diff.n, float)
    with np.errstate(invalid="ignore", divide="ignore"):
        v = diff.var * n / np.maximum(n - 1, 1) / n  # the sample variance (ddof 1) over n
    d = np.asarray(diff.mean, float)
    tau2 = (params.tau_sd ** 2) * diff.var
    p = p_value(np.nan_to_num(d), np.nan_to_num(v), np.nan_to_num(tau2))
    return Look(d, v, tau2, p, half_width(np.nan_to_num(v), np.nan_to_num(tau2), params.alpha))


def naive_z_p(control: Moments, canary: Moments, worse_is_higher: bool = True) -> np.ndarray:
    """The fixed-sample one-sided z-test's p-value (for the simulation's comparison only)."""
    from scipy.stats import norm

    with np.errstate(invalid="ignore", divide="ignore"):
        z = (canary.mean - control.mean) / np.sqrt(control.var / control.n + canary.var / canary.n)
    z = np.nan_to_num(z)
    return norm.sf(z) if worse_is_higher else norm.cdf(z)
