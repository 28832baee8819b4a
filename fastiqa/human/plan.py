"""Per-rater trial plan: training trials first, then the test trials (x repeats)
and the gold trials in a random order seeded by (study seed, rater), with the
same source image never twice in a row when the study has more than one.

A trial: {"kind": "training" | "test" | "gold", "content": name, "stimuli": [ids
in display order], "roles": ["test"] | ["reference", "test"] | ["A", "B"] |
["reference", "A", "B"], "methods": [method per stimulus], "gold": None |
"hidden_ref" | "repeat"}. For PC the vote is 0 when A (left) is chosen, 1 for B.
"""
import hashlib
import random

from .study import REFERENCE


def rater_seed(study_seed, rater):
    return int(hashlib.sha256(f"{study_seed}/{rater}".encode()).hexdigest()[:16], 16)


def _trial(study, kind, content, methods, gold=None):
    sids = [study.stimulus(content, m) for m in methods]
    if study.protocol == "pc":
        roles = (["reference"] if study.doc["show_ref"] else []) + ["A", "B"]
        if study.doc["show_ref"]:
            sids, methods = [study.stimulus(content, REFERENCE), *sids], [REFERENCE, *methods]
    elif study.protocol == "dcr":
        roles = ["reference", "test"]
        sids, methods = [study.stimulus(content, REFERENCE), *sids], [REFERENCE, *methods]
    else:
        roles = ["test"]
    return {"kind": kind, "content": content, "stimuli": sids, "roles": roles, "methods": list(methods), "gold": gold}


def base_trials(study):
    """One trial per stimulus to rate (ACR, ACR-HR, DCR) or per pair of methods (PC)."""
    out = []
    for c in study.contents:
        if study.protocol == "pc":
            ms = study.methods
            out += [_trial(study, "test", c, [ms[i], ms[j]]) for i in range(len(ms)) for j in range(i + 1, len(ms))]
        else:
            out += [_trial(study, "test", c, [m]) for m in study.rated_methods()]
    return out


def _swap(trial):
    """The same PC pair with the sides exchanged (A <-> B), reference panel kept first."""
    t = dict(trial)
    k = 1 if trial["roles"][0] == "reference" else 0
    t["stimuli"] = trial["stimuli"][:k] + trial["stimuli"][k:][::-1]
    t["methods"] = trial["methods"][:k] + trial["methods"][k:][::-1]
    return t


def _gold(study, base, n, rng):
    out = []
    hidden = study.protocol in ("acr", "dcr")
    for g in range(n):
        if hidden and g % 2 == 0:
            out.append(_trial(study, "gold", rng.choice(study.contents), [REFERENCE], gold="hidden_ref"))
        else:
            out.append(dict(rng.choice(base), kind="gold", gold="repeat"))
    return out


def _training(study, base, rng):
    """Training trials drawn from the test trials, the images taken in turn (so they can alternate)."""
    contents = list(study.contents)
    rng.shuffle(contents)
    by_content = {c: [t for t in base if t["content"] == c] for c in contents}
    return [dict(rng.choice(by_content[contents[k % len(contents)]]), kind="training")
            for k in range(study.doc["training"])]


def order_no_repeat(trials, rng, prev=None):
    """Random order in which no two neighbours share a content, whenever that is possible
    (greedy: a content that could no longer be separated by the others goes first)."""
    left = {}
    for t in trials:
        left.setdefault(t["content"], []).append(t)
    for ts in left.values():
        rng.shuffle(ts)
    out, remaining = [], len(trials)
    while remaining:
        allowed = [c for c, ts in left.items() if ts and c != prev] or [c for c, ts in left.items() if ts]
        forced = [c for c in allowed if 2 * len(left[c]) > remaining]
        pick = forced[0] if forced else rng.choices(allowed, weights=[len(left[c]) for c in allowed])[0]
        out.append(left[pick].pop())
        prev, remaining = pick, remaining - 1
    return out


def make_plan(study, rater):
    """The rater's list of trials, deterministic in (study seed, rater)."""
    rng = random.Random(rater_seed(study.doc["seed"], rater))
    base = base_trials(study)
    tests = [dict(t) for t in base for _ in range(study.doc["repeats"])]
    gold = _gold(study, base, study.doc["gold"], rng)
    training = _training(study, base, rng)
    if study.protocol == "pc":  # which side each method appears on: random per trial
        tests = [_swap(t) if rng.random() < 0.5 else t for t in tests]
        training = [_swap(t) if rng.random() < 0.5 else t for t in training]
        gold = [_swap(t) for t in gold]
    first = order_no_repeat(training, rng)
    rest = order_no_repeat(tests + gold, rng, prev=first[-1]["content"] if first else None)
    return first + rest
