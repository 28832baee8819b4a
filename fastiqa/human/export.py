"""`fastiqa human export`: the votes for other tools.

csv     one row per vote: rater, trial position, kind (training / test / gold), image,
        method(s), value, response time, viewport and device pixel ratio, time
sureal  a SUREAL dataset (Python file: dataset_name, ref_videos, dis_videos with
        'os' = {rater: score, or [scores] when repeated}); test votes of rating studies
pwcmp   long CSV for pwcmp: observer, scene, condition_A, condition_B, is_A_selected
        (test votes of pairwise studies)
"""

import csv
import os
import pprint

from .records import records
from .study import REFERENCE, StudyError, open_study

FORMATS = ("csv", "sureal", "pwcmp")


def _votes(study):
    store = study.store()
    try:
        return store.votes()
    finally:
        store.close()


def export_csv(study, votes, path):
    with open(path, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(
            [
                "rater",
                "pos",
                "kind",
                "gold",
                "image",
                "roles",
                "methods",
                "stimuli",
                "value",
                "response_ms",
                "viewport_w",
                "viewport_h",
                "dpr",
                "time",
            ]
        )
        for v in votes:
            t = v["trial"]
            w.writerow(
                [
                    v["rater"],
                    v["pos"],
                    t["kind"],
                    t["gold"] or "",
                    t["content"],
                    "+".join(t["roles"]),
                    "+".join(t["methods"]),
                    "+".join(t["stimuli"]),
                    v["value"],
                    v["response_ms"],
                    v["viewport_w"],
                    v["viewport_h"],
                    v["dpr"],
                    v["created"],
                ]
            )


def export_sureal(study, votes, path):
    if study.protocol == "pc":
        raise StudyError("a pairwise study exports with --format pwcmp (or csv), not sureal")
    cid = {c: k for k, c in enumerate(study.contents)}
    os_ = {}
    for r in records(study, votes):
        if r["kind"] == "test":
            os_.setdefault((r["content"], r["method"]), {}).setdefault(r["rater"], []).append(r["value"])
    refs = [
        {
            "content_id": cid[c],
            "content_name": c,
            "path": os.path.abspath(study.stimulus_path(study.stimulus(c, REFERENCE))),
        }
        for c in study.contents
    ]
    dis = []
    for (c, m), scores in sorted(os_.items()):
        sid = study.stimulus(c, m)
        dis.append(
            {
                "content_id": cid[c],
                "asset_id": len(dis),
                "method": m,
                "stimulus": sid,
                "path": os.path.abspath(study.stimulus_path(sid)),
                "os": {r: (v[0] if len(v) == 1 else v) for r, v in sorted(scores.items())},
            }
        )
    first = study.stimuli[study.stimulus(study.contents[0], REFERENCE)]
    with open(path, "w") as f:
        f.write(f"# SUREAL dataset exported by fastiqa human ({study.protocol}, scale {study.scale})\n")
        f.write(f"dataset_name = {study.doc['title']!r}\n")
        f.write("yuv_fmt = 'notyuv'\n")
        f.write(f"width = {first['width']}\nheight = {first['height']}\n")
        if study.protocol == "acr-hr":
            f.write(f"ref_score = {float(max(v for v, _ in study.doc['labels']))}\n")
        f.write("ref_videos = " + pprint.pformat(refs, sort_dicts=False) + "\n")
        f.write("dis_videos = " + pprint.pformat(dis, sort_dicts=False) + "\n")


def export_pwcmp(study, votes, path):
    if study.protocol != "pc":
        raise StudyError(
            f"--format pwcmp is for pairwise (pc) studies; this one is {study.protocol}: use csv or sureal"
        )
    with open(path, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["observer", "scene", "condition_A", "condition_B", "is_A_selected"])
        for r in records(study, votes):
            if r["kind"] == "test":
                w.writerow([r["rater"], r["content"], r["a"], r["b"], int(r["winner"] == r["a"])])


def export(study_dir, fmt, out_path):
    if fmt not in FORMATS:
        raise StudyError(f"unknown export format {fmt!r}; choose from {', '.join(FORMATS)}")
    study = open_study(study_dir)
    parent = os.path.dirname(os.path.abspath(out_path))
    if not os.path.isdir(parent):
        raise StudyError(f"cannot write {out_path!r}: its folder does not exist")
    votes = _votes(study)
    {"csv": export_csv, "sureal": export_sureal, "pwcmp": export_pwcmp}[fmt](study, votes, out_path)
    return out_path
