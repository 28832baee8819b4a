"""Rater screening.

bt500_screen: ITU-R BT.500-14 Annex 1 2.3.1. Per presentation (stimulus x repetition):
mean, standard deviation S and kurtosis beta2 = m4 / m2^2 (m_x = mean((u - mean)^x)).
A vote counts in P_i when u >= mean + k S and in Q_i when u <= mean - k S, with k = 2
for a normal distribution (2 <= beta2 <= 4) and k = sqrt(20) otherwise. Rater i is
rejected when (P_i + Q_i) / n_i > 0.05 and |P_i - Q_i| / (P_i + Q_i) < 0.3
(n_i: the rater's number of presentations).

ml_subject_model: ITU-T P.913 (2021) 12.6 / P.910 (2023) Annex E. Vote of rater i on
stimulus j: u_ij = psi_j + Delta_i + upsilon_i X, X ~ N(0, 1) (true quality psi,
rater bias Delta, rater inconsistency upsilon). Maximum likelihood by the standard's
alternating updates, each the exact maximiser given the others:
    Delta_i   = mean_j (u_ij - psi_j)
    upsilon_i = sqrt(mean_j (u_ij - psi_j - Delta_i)^2)
    psi_j     = sum_i (u_ij - Delta_i) / upsilon_i^2 / sum_i upsilon_i^-2
until sum_j (psi_j - psi_j_prev)^2 < 1e-8, with mean(Delta) = 0 (the model is
invariant to moving a constant between psi and Delta). 95% CIs: psi_j +- 1.96 /
sqrt(sum_i upsilon_i^-2), Delta_i +- 1.96 upsilon_i / sqrt(n_i). Without repeats the likelihood is unbounded when one
rater's votes explain psi exactly (upsilon_i -> 0; SUREAL's solvers go there too):
upsilon is floored at `floor` (the analysis uses the quantisation noise of the
scale, 1 / sqrt(12) of a step). A rater is flagged inconsistent when upsilon_i > 2 x
the median upsilon (a random clicker's votes do not follow psi, so its upsilon is the spread of the whole scale).
"""

import math

import numpy as np

INCONSISTENT_FACTOR = 2.0


def bt500_screen(matrix):
    """matrix: (presentations, raters) votes, nan where missing.
    Returns [{'P', 'Q', 'n', 'rejected', 'reason'}] per rater (column)."""
    u = np.asarray(matrix, dtype=np.float64)
    n_pres, n_raters = u.shape
    P, Q, n = np.zeros(n_raters, int), np.zeros(n_raters, int), np.zeros(n_raters, int)
    for row in u:
        ok = np.isfinite(row)
        if ok.sum() < 2:
            n += ok
            continue
        v = row[ok]
        mean, s = v.mean(), v.std(ddof=1)
        m2, m4 = ((v - mean) ** 2).mean(), ((v - mean) ** 4).mean()
        beta2 = m4 / m2**2 if m2 > 0 else 3.0  # all votes equal: nobody is out
        k = 2.0 if 2.0 <= beta2 <= 4.0 else math.sqrt(20.0)
        n += ok
        P += ok & (row >= mean + k * s) & (s > 0)
        Q += ok & (row <= mean - k * s) & (s > 0)
    out = []
    for i in range(n_raters):
        pq = P[i] + Q[i]
        rejected = bool(n[i] > 0 and pq / n[i] > 0.05 and abs(P[i] - Q[i]) / pq < 0.3) if pq else False
        reason = (
            (
                f"BT.500: {pq} of {n[i]} votes outside the 2S/sqrt(20)S band (> 5%), balanced "
                f"(|P-Q|/(P+Q) = {abs(P[i] - Q[i]) / pq:.2f} < 0.3)"
            )
            if rejected
            else ""
        )
        out.append({"P": int(P[i]), "Q": int(Q[i]), "n": int(n[i]), "rejected": rejected, "reason": reason})
    return out


def ml_subject_model(matrix, tol=1e-8, max_iter=10000, floor=1e-3):
    """matrix: (stimuli, raters) or (stimuli, raters, repeats) votes, nan where missing.
    Returns {'psi', 'psi_ci', 'bias', 'bias_ci', 'inconsistency', 'flagged', 'iterations'}."""
    u = np.asarray(matrix, dtype=np.float64)
    if u.ndim == 2:
        u = u[:, :, None]
    ok = np.isfinite(u)
    if not ok.any(axis=(0, 2)).all():
        raise ValueError("matrix: every rater (column) needs at least one vote")
    if not ok.any(axis=(1, 2)).all():
        raise ValueError("matrix: every stimulus (row) needs at least one vote")
    w = ok.astype(np.float64)
    uz = np.where(ok, u, 0.0)
    n_i = w.sum(axis=(0, 2))
    psi = uz.sum(axis=(1, 2)) / w.sum(axis=(1, 2))  # start from the MOS
    bias = np.zeros(u.shape[1])
    it = 0
    for it in range(1, max_iter + 1):
        res = np.where(ok, u - psi[:, None, None], 0.0)
        bias = res.sum(axis=(0, 2)) / n_i
        e = np.where(ok, u - psi[:, None, None] - bias[None, :, None], 0.0)
        ups = np.maximum(np.sqrt((e**2).sum(axis=(0, 2)) / n_i), floor)
        prec = w / ups[None, :, None] ** 2
        new = (prec * np.where(ok, u - bias[None, :, None], 0.0)).sum(axis=(1, 2)) / prec.sum(axis=(1, 2))
        shift = bias.mean()
        new, bias = new + shift, bias - shift
        done = ((new - psi) ** 2).sum() < tol
        psi = new
        if done:
            break
    prec_j = (w / ups[None, :, None] ** 2).sum(axis=(1, 2))
    median = float(np.median(ups))
    return {
        "psi": psi,
        "psi_ci": 1.96 / np.sqrt(prec_j),
        "bias": bias,
        "bias_ci": 1.96 * ups / np.sqrt(n_i),
        "inconsistency": ups,
        "flagged": ups > INCONSISTENT_FACTOR * median,
        "iterations": it,
    }
