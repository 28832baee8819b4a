"""How well a metric predicts the subjective scores (ITU-T P.1401, 2020).

x: the metric per stimulus (sign flipped for lower-is-better metrics, so that
larger always means better), y: MOS per stimulus.

  mapping: 4-parameter logistic (P.1401 7.4 / VQEG), fitted increasing (b1 >= b2)
      f(x) = (b1 - b2) / (1 + exp(-(x - b3) / |b4|)) + b2
  and the monotonic third-order polynomial of P.1401 7.3
      f(x) = a0 + a1 x + a2 x^2 + a3 x^3, with f'(x) >= 0 over the range of x.
  PLCC: Pearson's r of (f(x), y); SROCC: Spearman's rho of (x, y); KROCC: Kendall's tau-b.
  RMSE* (P.1401 7.5.2): sqrt(sum (y - f(x))^2 / (N - d)), d = 4 parameters of f.
  Outlier ratio (P.1401 7.5.3): share of stimuli with |y - f(x)| > 2 sigma_i / sqrt(N_i)
      (sigma_i, N_i: standard deviation and number of the votes behind y_i).
  Fisher z (P.1401 8.1): z = (atanh r1 - atanh r2) / sqrt(1 / (N1 - 3) + 1 / (N2 - 3)),
      two-sided p from the normal distribution.
"""
import math
import warnings

import numpy as np
from scipy import optimize, stats

# direction of the metrics fastiqa computes (True: higher is better)
HIGHER_IS_BETTER = {"psnr": True, "ssim": True, "ms_ssim": True, "mse": False, "mae": False, "l1": False,
                    "lpips": False, "lpips_vgg": False, "dists": False, "charbonnier": False}


def logistic4(x, b1, b2, b3, b4):
    with np.errstate(over="ignore"):  # exp overflow -> inf -> the lower asymptote b2, as it should
        return (b1 - b2) / (1.0 + np.exp(-(x - b3) / abs(b4))) + b2


def fit_logistic4(x, y):
    """Parameters (b1, b2, b3, b4) of the least-squares logistic, increasing (b1 >= b2, b4 > 0:
    the metric is already oriented so that larger is better); falls back to the starting
    point when the fit does not converge."""
    x, y = np.asarray(x, float), np.asarray(y, float)
    sx = float(np.std(x)) or 1.0
    p0 = [max(float(np.ptp(y)), 1e-6), float(y.min()), float(np.median(x)), sx / 2]  # (b1 - b2, b2, b3, b4)

    def f(x, h, b2, b3, b4):
        return logistic4(x, b2 + h, b2, b3, b4)

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optimize.OptimizeWarning)  # no covariance: we only use the fit
        try:
            p, _ = optimize.curve_fit(f, x, y, p0=p0, bounds=([0, -np.inf, -np.inf, 1e-9 * sx], np.inf),
                                      maxfev=20000)
        except (RuntimeError, ValueError):
            p = np.array(p0)
    h, b2, b3, b4 = p
    return np.array([b2 + h, b2, b3, b4])


def fit_poly3_monotonic(x, y):
    """Coefficients (a0..a3) of the least-squares cubic whose slope is >= 0 on [min x, max x]."""
    x, y = np.asarray(x, float), np.asarray(y, float)
    lo, span = float(x.min()), float(np.ptp(x)) or 1.0
    t = (x - lo) / span  # fit on [0, 1] for conditioning, convert back at the end
    V = np.vander(t, 4, increasing=True)
    grid = np.linspace(0.0, 1.0, 64)
    D = np.stack([np.zeros_like(grid), np.ones_like(grid), 2 * grid, 3 * grid ** 2], axis=1)
    c0 = np.linalg.lstsq(V, y, rcond=None)[0]
    if (D @ c0).min() < 0:
        res = optimize.minimize(lambda c: ((V @ c - y) ** 2).sum(), c0, jac=lambda c: 2 * V.T @ (V @ c - y),
                                constraints=[{"type": "ineq", "fun": lambda c: D @ c, "jac": lambda c: D}],
                                method="SLSQP", options={"maxiter": 500, "ftol": 1e-12})
        c0 = res.x
    # back to x: t = (x - lo) / span
    poly_t = np.polynomial.Polynomial(c0)
    poly_x = poly_t(np.polynomial.Polynomial([-lo / span, 1.0 / span]))
    return np.pad(poly_x.coef, (0, 4 - len(poly_x.coef)))


def poly3(x, coef):
    return np.polynomial.polynomial.polyval(np.asarray(x, float), coef)


def agreement(metric, mos, mos_std=None, mos_n=None, higher_is_better=True):
    """P.1401 figures of merit of one metric against the MOS (one value per stimulus)."""
    x = np.asarray(metric, float) * (1.0 if higher_is_better else -1.0)
    y = np.asarray(mos, float)
    if x.shape != y.shape or x.ndim != 1:
        raise ValueError(f"metric and mos must be 1-D of one length, got {x.shape} and {y.shape}")
    keep = np.isfinite(x) & np.isfinite(y)
    x, y = x[keep], y[keep]
    n = int(x.size)
    if n < 5:
        raise ValueError(f"agreement needs at least 5 stimuli with finite values, got {n}")
    b = fit_logistic4(x, y)
    a = fit_poly3_monotonic(x, y)
    fl, fp = logistic4(x, *b), poly3(x, a)
    err = y - fl
    out = {
        "n": n, "higher_is_better": bool(higher_is_better),
        "plcc_logistic": _pearson(fl, y), "plcc_poly3": _pearson(fp, y), "plcc_raw": _pearson(x, y),
        "srocc": float(stats.spearmanr(x, y)[0]), "krocc": float(stats.kendalltau(x, y)[0]),
        "rmse_logistic": float(math.sqrt((err ** 2).sum() / (n - 4))),
        "rmse_poly3": float(math.sqrt(((y - fp) ** 2).sum() / (n - 4))),
        "logistic": [float(v) for v in b], "poly3": [float(v) for v in a],
    }
    if mos_std is not None and mos_n is not None:
        s, k = np.asarray(mos_std, float)[keep], np.asarray(mos_n, float)[keep]
        bound = 2 * s / np.sqrt(k)
        ok = np.isfinite(bound)
        out["outlier_ratio"] = float((np.abs(err[ok]) > bound[ok]).mean()) if ok.any() else math.nan
    return out


def _pearson(a, b):
    if np.std(a) == 0 or np.std(b) == 0:
        return math.nan
    return float(np.corrcoef(a, b)[0, 1])


def fisher_z(r1, n1, r2, n2):
    """(z, two-sided p) of the difference between two correlations."""
    z = (math.atanh(r1) - math.atanh(r2)) / math.sqrt(1.0 / (n1 - 3) + 1.0 / (n2 - 3))
    return z, float(2 * stats.norm.sf(abs(z)))
