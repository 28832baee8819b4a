"""The votes of a study as flat records, one per vote, for analysis and export.

Rating protocols (acr, acr-hr, dcr): {rater, kind, gold, content, method, value, rep}
(rep: 0 for the rater's first vote of that stimulus and kind, 1 for the next...).
PC: {rater, kind, gold, content, a, b, winner, loser, value} (value 0: A chosen).
"""


def rating_records(study, votes):
    out, seen = [], {}
    for v in votes:
        t = v["trial"]
        method = t["methods"][t["roles"].index("test")]
        key = (v["rater"], t["kind"], t["content"], method)
        rep = seen[key] = seen.get(key, -1) + 1
        out.append({"rater": v["rater"], "kind": t["kind"], "gold": t["gold"], "content": t["content"],
                    "method": method, "value": v["value"], "rep": rep, "response_ms": v["response_ms"]})
    return out


def pc_records(study, votes):
    out = []
    for v in votes:
        t = v["trial"]
        a, b = t["methods"][t["roles"].index("A")], t["methods"][t["roles"].index("B")]
        winner, loser = (a, b) if v["value"] == 0 else (b, a)
        out.append({"rater": v["rater"], "kind": t["kind"], "gold": t["gold"], "content": t["content"], "a": a, "b": b,
                    "winner": winner, "loser": loser, "value": v["value"], "response_ms": v["response_ms"]})
    return out


def records(study, votes=None):
    if votes is None:
        store = study.store()
        try:
            votes = store.votes()
        finally:
            store.close()
    return (pc_records if study.protocol == "pc" else rating_records)(study, votes)
