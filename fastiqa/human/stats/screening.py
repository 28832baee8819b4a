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

With few raters the median is no yardstick (with three, psi may follow one rater and the
median is a careful rater's doubled noise): a rater is also flagged when upsilon_i > RANDOM_FRACTION
x the spread of a random clicker on the scale (random_sd given: the standard deviation of a uniform choice among
the levels, sqrt((L^2 - 1) / 12) steps for L equally spaced levels; sqrt(2) times that for the
differential scores of ACR-HR).

consensus_pairs: pairwise studies, each rater against the Thurstone scores fitted to the other
raters (leave one out), by a likelihood ratio against random clicking (see the comment above it).
"""

import math

import numpy as np

INCONSISTENT_FACTOR = 2.0
RANDOM_FRACTION = 0.75


def random_spread(levels):
    """Standard deviation of a vote drawn uniformly from the scale's levels."""
    return float(np.std(np.asarray(levels, dtype=np.float64)))


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


def ml_subject_model(matrix, tol=1e-8, max_iter=10000, floor=1e-3, random_sd=None):
    """matrix: (stimuli, raters) or (stimuli, raters, repeats) votes, nan where missing; random_sd:
    the spread of a random clicker's scores (random_spread(levels); x sqrt(2) for differential
    scores), which adds the random-clicker rule. Returns {'psi', 'psi_ci', 'bias', 'bias_ci',
    'inconsistency', 'flagged', 'flagged_median', 'flagged_random', 'iterations'}."""
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
    by_median = ups > INCONSISTENT_FACTOR * median
    by_random = ups > RANDOM_FRACTION * random_sd if random_sd is not None else np.zeros_like(by_median)
    return {
        "psi": psi,
        "psi_ci": 1.96 / np.sqrt(prec_j),
        "bias": bias,
        "bias_ci": 1.96 * ups / np.sqrt(n_i),
        "inconsistency": ups,
        "flagged": by_median | by_random,
        "flagged_median": by_median,
        "flagged_random": by_random,
        "iterations": it,
    }


# --- agreement with the other raters (leave one out) -----------------------------------------------
# A rater is screened by a likelihood ratio: do their votes follow the consensus of the *other*
# raters (a model fitted without them), or are they better explained by random clicking?
#     LLR_i = sum over the rater's votes of log P(vote | consensus of the others) - log P(vote | random)
# The consensus model gets a lapse rate (LAPSE: a careful rater sometimes slips), so that one
# surprising vote costs at most log(LAPSE / levels) - log(1 / levels). A rater is flagged when
#   - LLR_i < 0: random clicking is the likelier explanation of their votes, and
#   - z_i = (LLR_i - E_i) / SD_i < -Z_FLAG: their LLR is far below what a rater who follows the
#     consensus would get (E_i, SD_i: its mean and spread under the consensus model), and
#   - E_i >= MIN_EVIDENCE nats: the study can tell at all (a study of near-identical conditions,
#     or too few votes per rater, flags nobody by chance).
# A random clicker's expected LLR is negative; the power grows with the votes per rater (about 20
# pairwise votes on conditions 1 JOD apart find a random clicker reliably, 9 often do not).
LAPSE = 0.1
MIN_EVIDENCE = 2.0
Z_FLAG = 2.33  # one-sided 1%


def _verdict(llr, expected, var):
    z = (llr - expected) / np.sqrt(np.maximum(var, 1e-12))
    flagged = (llr < 0) & (z < -Z_FLAG) & (expected >= MIN_EVIDENCE)
    return {"llr": llr, "expected_llr": expected, "z": z, "flagged": flagged}


def consensus_pairs(comparisons, n, alpha=0.1):
    """comparisons: [(rater, winner, loser)] (indices of conditions). Each rater's choices against
    the Thurstone Case V scores fitted to the other raters' choices (weak prior alpha).
    Returns {'raters', 'llr', 'expected_llr', 'z', 'flagged', 'agreement'} (agreement: the share of the
    rater's choices that go the consensus' way, among those where it has a side)."""
    from .pairwise import count_matrix, fit_many, preference_probability

    raters = sorted({r for r, _, _ in comparisons})
    by = {r: [(w, l) for rr, w, l in comparisons if rr == r] for r in raters}
    counts = np.stack([count_matrix(by[r], n) for r in raters]) if raters else np.zeros((0, n, n))
    loo = fit_many(counts.sum(0)[None] - counts, "thurstone", alpha) if raters else np.zeros((0, n))
    llr, expected, var, agree = [], [], [], []
    for k, r in enumerate(raters):
        w, l = np.array(by[r]).T
        p = preference_probability(loo[k][w] - loo[k][l])  # consensus probability of the rater's choice
        pl = (1 - LAPSE) * p + LAPSE / 2
        llr.append(float(np.log(2 * pl).sum()))
        expected.append(float((p * np.log(2 * pl) + (1 - p) * np.log(2 * (1 - pl))).sum()))
        var.append(float((p * (1 - p) * np.log(pl / (1 - pl)) ** 2).sum()))
        sided = np.abs(p - 0.5) > 1e-9
        agree.append(float((p[sided] > 0.5).mean()) if sided.any() else float("nan"))
    out = _verdict(np.array(llr), np.array(expected), np.array(var))
    return dict(out, raters=raters, agreement=np.array(agree))
