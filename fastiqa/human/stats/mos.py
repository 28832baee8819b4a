"""Mean opinion scores with Student-t confidence intervals (ITU-R BT.500-14 Annex 1
2.2; ITU-T P.910 (2023) 12.2): MOS = mean(u), CI95 = t(0.975, N-1) * S / sqrt(N),
S the sample standard deviation (N-1), so small N gets the wider t interval.

ACR-HR differential viewer scores (P.910 7.2.1.2 / 12.4): DV = V(test) - V(ref) + K
per rater and source image, K = 5 on the 5-level scale (the top of the scale:
9 on ACR-9, 10 on ACR-11); DMOS = mean of the DVs. Values above K (test rated
better than its reference) are kept, as P.910 allows.
"""
import math

import numpy as np
from scipy import stats as _st


def mean_ci(values, level=0.95):
    """{'mean', 'std', 'n', 'ci'}: ci is the half-width (nan for n < 2)."""
    u = np.asarray(values, dtype=np.float64).ravel()
    u = u[np.isfinite(u)]
    n = u.size
    if n == 0:
        return {"mean": math.nan, "std": math.nan, "n": 0, "ci": math.nan}
    s = float(u.std(ddof=1)) if n > 1 else math.nan
    ci = float(_st.t.ppf(0.5 + level / 2, n - 1) * s / math.sqrt(n)) if n > 1 else math.nan
    return {"mean": float(u.mean()), "std": s, "n": int(n), "ci": ci}


def group_mos(records, key, value="value", level=0.95):
    """{group: mean_ci(...)} over records (dicts) grouped by key(record)."""
    groups = {}
    for r in records:
        groups.setdefault(key(r), []).append(r[value])
    return {g: mean_ci(v, level) for g, v in sorted(groups.items())}


def differential_scores(records, top):
    """ACR-HR: [{rater, content, method, value=DV}] from records with rater, content,
    method ('reference' for the hidden reference) and value. A rater's repeated votes
    of the same reference are averaged first; tests without that rater's reference vote
    are left out."""
    refs = {}
    for r in records:
        if r["method"] == "reference":
            refs.setdefault((r["rater"], r["content"]), []).append(r["value"])
    out = []
    for r in records:
        ref = refs.get((r["rater"], r["content"]))
        if r["method"] != "reference" and ref:
            out.append(dict(r, value=r["value"] - float(np.mean(ref)) + top))
    return out
