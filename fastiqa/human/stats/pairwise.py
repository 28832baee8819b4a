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
"""
import numpy as np
from scipy import optimize, special
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
    if model == "thurstone":
        z = d / SIGMA_JOD
        logf = special.log_ndtr(z)
        return logf, np.exp(norm.logpdf(z) - logf) / SIGMA_JOD
    if model == "bt":
        return -np.logaddexp(0.0, -d), special.expit(-d)
    raise ValueError(f"model must be 'thurstone' or 'bt', got {model!r}")


def fit(counts, model="thurstone", alpha=0.0, anchor=0, x0=None):
    """Scores q (numpy, length n) with q[anchor] = 0."""
    c = np.asarray(counts, dtype=np.float64)
    n = c.shape[0]
    if c.shape != (n, n) or (c < 0).any():
        raise ValueError(f"counts must be a square matrix of non-negative counts, got shape {c.shape}")
    ii, jj = np.nonzero(c)

    def nll(q):
        d = q[ii] - q[jj]
        logf, g = _log_f_and_grad(d, model)
        qc = q - q.mean()
        grad = np.zeros(n)
        np.add.at(grad, ii, -c[ii, jj] * g)
        np.add.at(grad, jj, c[ii, jj] * g)
        return -(c[ii, jj] * logf).sum() + 0.5 * alpha * (qc ** 2).sum(), grad + alpha * qc

    q0 = np.zeros(n) if x0 is None else np.asarray(x0, dtype=np.float64)
    res = optimize.minimize(nll, q0, jac=True, method="L-BFGS-B", options={"maxiter": 2000, "gtol": 1e-10})
    q = res.x - res.x.mean()  # the likelihood is invariant to a common shift
    return q - q[anchor]


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
    boot = np.empty((samples, n))
    for b in range(samples):
        pick = rng.integers(0, len(raters), len(raters))
        boot[b] = fit(per_rater[pick].sum(0), model, alpha, anchor, x0=q)
    lo, hi = np.quantile(boot, [(1 - level) / 2, (1 + level) / 2], axis=0)
    diff = boot[:, :, None] - boot[:, None, :]
    p = np.minimum(1.0, 2 * np.minimum((diff <= 0).mean(0), (diff >= 0).mean(0)))
    np.fill_diagonal(p, 1.0)
    return {"scores": q, "ci_low": lo, "ci_high": hi, "p": p, "significant": p < 1 - level}


def preference_probability(dq, model="thurstone"):
    """P(i preferred to j) for a score difference dq = q_i - q_j."""
    return np.exp(_log_f_and_grad(np.asarray(dq, dtype=np.float64), model)[0])
