"""Scaling of pairwise comparisons.

counts[i, j] = how often condition i was preferred to condition j. Both models
maximise sum_ij counts[i, j] log F(q_i - q_j) - alpha / 2 sum_i (q_i - mean q)^2
(a weak Gaussian prior keeps unanimous answers finite; alpha = 0 is plain ML):

  Thurstone Case V (Thurstone 1927; as in pwcmp, Perez-Ortiz & Mantiuk 2017):
      F(d) = Phi(d / sigma), sigma = 1 / Phi^-1(0.75), so that a difference of
      1 JOD (just-objectionable difference) means 75% of choices.
  Bradley-Terry (1952): F(d) = 1 / (1 + exp(-d)), q the log-strengths.

Scores are returned relative to the anchor condition (score 0). bootstrap()
resamples raters with replacement and gives percentile 95% CIs and the
significance matrix (two-sided bootstrap p of q_i - q_j).

fit_many() fits a stack of count matrices at once by Newton's method (the negative
log-likelihood is convex in q: log F is concave for both models), with a backtracking
line search; the bootstrap's 500 fits take milliseconds, not seconds.
"""
import numpy as np
from scipy import special
from scipy.stats import norm

SIGMA_JOD = 1.0 / norm.ppf(0.75)  # 1.4826: Phi(1 / SIGMA_JOD) = 0.75


def count_matrix(comparisons, n):
    """comparisons: iterable of (winner, loser) indices -> (n, n) counts."""
    c = np.zeros((n, n))
    for w, l in comparisons:
        c[w, l] += 1
    return c


def _log_f_and_grad(d, model):
    """log F(d) and its derivative, stable for large |d|."""
    return _log_f_derivs(d, model)[:2]


def _log_f_derivs(d, model):
    """log F(d), its first and second derivatives."""
    if model == "thurstone":
        z = d / SIGMA_JOD
        logf = special.log_ndtr(z)
        lam = np.exp(norm.logpdf(z) - logf)  # phi / Phi, ~ -z for very negative z
        return logf, lam / SIGMA_JOD, -lam * (z + lam) / SIGMA_JOD**2
    if model == "bt":
        s = special.expit(-d)
        return -np.logaddexp(0.0, -d), s, -s * (1.0 - s)
    raise ValueError(f"model must be 'thurstone' or 'bt', got {model!r}")


def _objective(c, q, model, alpha):
    d = q[:, :, None] - q[:, None, :]
    logf = _log_f_derivs(d, model)[0]
    qc = q - q.mean(1, keepdims=True)
    return -(np.where(c > 0, c * logf, 0.0)).sum((1, 2)) + 0.5 * alpha * (qc**2).sum(1) + 0.5 * q.mean(1) ** 2


def fit_many(counts, model="thurstone", alpha=0.0, anchor=0, max_iter=100, tol=1e-10):
    """Scores (B, n) of a stack of count matrices (B, n, n), each with q[anchor] = 0."""
    c = np.asarray(counts, dtype=np.float64)
    if c.ndim != 3 or c.shape[1] != c.shape[2] or (c < 0).any():
        raise ValueError(f"counts must be square matrices of non-negative counts, got shape {c.shape}")
    _log_f_derivs(np.zeros(1), model)  # names a bad model before any work
    b, n = c.shape[:2]
    q = np.zeros((b, n))
    eye, ones = np.eye(n), np.ones((n, n)) / n
    f = _objective(c, q, model, alpha)
    active = np.ones(b, bool)
    for _ in range(max_iter):
        if not active.any():
            break
        qa, ca = q[active], c[active]
        d = qa[:, :, None] - qa[:, None, :]
        _, g, h = _log_f_derivs(d, model)
        cg = ca * g
        qc = qa - qa.mean(1, keepdims=True)
        grad = -cg.sum(2) + cg.sum(1) + alpha * qc + qa.mean(1, keepdims=True) / n
        w = -ca * h
        w = w + w.transpose(0, 2, 1)
        hess = w.sum(2)[:, :, None] * eye - w + alpha * (eye - ones) + ones / n + 1e-12 * eye
        step = np.linalg.solve(hess, grad[:, :, None])[:, :, 0]
        t = np.ones(len(qa))
        fa = f[active]
        for _ in range(40):  # backtracking: halve the step until the objective does not rise
            trial = qa - t[:, None] * step
            ft = _objective(ca, trial, model, alpha)
            bad = ~(ft <= fa + 1e-12 * np.abs(fa))
            if not bad.any():
                break
            t = np.where(bad, t / 2, t)
        idx = np.nonzero(active)[0]
        q[idx] = trial
        f[idx] = ft
        done = np.abs(t[:, None] * step).max(1) < tol
        active[idx[done]] = False
    q = q - q.mean(1, keepdims=True)
    return q - q[:, anchor:anchor + 1]


def fit(counts, model="thurstone", alpha=0.0, anchor=0, x0=None):
    """Scores q (numpy, length n) with q[anchor] = 0. (x0 is accepted for compatibility; unused.)"""
    c = np.asarray(counts, dtype=np.float64)
    n = c.shape[0] if c.ndim else 0
    if c.ndim != 2 or c.shape != (n, n) or (c < 0).any():
        raise ValueError(f"counts must be a square matrix of non-negative counts, got shape {c.shape}")
    return fit_many(c[None], model, alpha, anchor)[0]


def bootstrap(comparisons, n, model="thurstone", alpha=0.0, anchor=0, samples=500, seed=0, level=0.95):
    """comparisons: [(rater, winner, loser)]. Returns {'scores', 'ci_low', 'ci_high', 'p', 'significant'}:
    p[i, j] the two-sided bootstrap p-value of q_i != q_j (resampling raters), significant = p < 1 - level."""
    by_rater = {}
    for r, w, l in comparisons:
        by_rater.setdefault(r, []).append((w, l))
    raters = sorted(by_rater)
    per_rater = np.stack([count_matrix(by_rater[r], n) for r in raters])
    q = fit(per_rater.sum(0), model, alpha, anchor)
    rng = np.random.default_rng(seed)
    picks = rng.integers(0, len(raters), (samples, len(raters)))
    boot = fit_many(per_rater[picks].sum(1), model, alpha, anchor)
    lo, hi = np.quantile(boot, [(1 - level) / 2, (1 + level) / 2], axis=0)
    diff = boot[:, :, None] - boot[:, None, :]
    p = np.minimum(1.0, 2 * np.minimum((diff <= 0).mean(0), (diff >= 0).mean(0)))
    np.fill_diagonal(p, 1.0)
    return {"scores": q, "ci_low": lo, "ci_high": hi, "p": p, "significant": p < 1 - level}


def preference_probability(dq, model="thurstone"):
    """P(i preferred to j) for a score difference dq = q_i - q_j."""
    return np.exp(_log_f_and_grad(np.asarray(dq, dtype=np.float64), model)[0])
