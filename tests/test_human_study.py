"""`fastiqa human init`: pairing, stimuli and hashes, trial plans, the votes store,
and one clear message per bad input."""

import json
import os
import re
import sqlite3

import numpy as np
import pytest
from _human_support import make_folders, make_study
from PIL import Image

from fastiqa import cli
from fastiqa.human import StudyError, init_study, open_study
from fastiqa.human.plan import base_trials, make_plan, order_no_repeat
from fastiqa.human.store import SCHEMA_VERSION


def _cli(capsys, *argv):
    rc = cli.main(["human", *map(str, argv)])
    out = capsys.readouterr()
    assert "Traceback" not in out.err
    return rc, out.out, out.err


# --- init -----------------------------------------------------------------------------------
@pytest.mark.parametrize("protocol, per_content", [("acr", 3), ("acr-hr", 4), ("dcr", 3), ("pc", 3)])
def test_init_builds_the_study(tmp_path, capsys, protocol, per_content):
    ref, dirs = make_folders(str(tmp_path / "src"), suffix="_x2")
    args = ["init", tmp_path / "study", "--ref", ref, "--protocol", protocol, "--suffix", "_x2", "--seed", 3]
    for name, d in dirs.items():
        args += ["--method", f"{name}={d}"]
    rc, out, err = _cli(capsys, *args)
    assert rc == 0, err
    study = open_study(str(tmp_path / "study"))
    assert study.contents == ["astronaut", "chelsea", "coffee"]
    assert len(study.stimuli) == 3 * 4  # reference + three methods per image, all copied in
    assert len(base_trials(study)) == 3 * per_content
    s = study.stimuli[study.stimulus("coffee", "jpeg")]
    assert s["source"].endswith("coffee_x2.png") and len(s["sha256"]) == 64
    assert os.path.isfile(os.path.join(study.folder, s["file"]))
    assert os.path.isfile(os.path.join(study.folder, "votes.sqlite"))
    assert "serve it with: fastiqa human serve" in out


def test_scale_labels_for_acr9_and_acr11(tmp_path):
    s9 = make_study(tmp_path / "a", "acr", scale=9)
    assert [v for v, _ in s9.doc["labels"]] == list(range(1, 10)) and s9.doc["labels"][-1][1] == "Excellent"
    s11 = make_study(tmp_path / "b", "acr", scale=11)
    assert [v for v, _ in s11.doc["labels"]] == list(range(0, 11)) and s11.doc["labels"][0][1] == "Bad"


def _bad_case(tmp_path, case):
    ref, dirs = make_folders(str(tmp_path / "src"))
    args = ["init", tmp_path / "study", "--ref", ref, "--protocol", "acr"]
    methods = [f"{n}={d}" for n, d in dirs.items()]
    if case == "missing pair":
        os.remove(os.path.join(dirs["blur"], "coffee.png"))
    elif case == "size mismatch":
        Image.fromarray(np.zeros((10, 12, 3), np.uint8)).save(os.path.join(dirs["noise"], "chelsea.png"))
    elif case == "unreadable":
        with open(os.path.join(dirs["jpeg"], "astronaut.png"), "wb") as f:
            f.write(b"not a png")
    elif case == "pc one method":
        args[-1], methods = "pc", methods[:1]
    elif case == "not a folder":
        methods.append(f"x={tmp_path / 'nowhere'}")
    elif case == "bad spec":
        methods.append("justafolder")
    elif case == "bad scale":
        args += ["--scale", "7"]
    elif case == "reserved name":
        methods.append(f"reference={dirs['blur']}")
    elif case == "study exists":
        os.makedirs(tmp_path / "study")
        (tmp_path / "study" / "x").write_text("x")
    elif case == "bad ref":
        args[3] = tmp_path / "nowhere"
    return args + [a for m in methods for a in ("--method", m)]


BAD = {
    "missing pair": "no prediction coffee.*",
    "size mismatch": "chelsea: size mismatch",
    "unreadable": "astronaut.png: cannot read image",
    "pc one method": "needs at least two --method",
    "not a folder": "not a folder",
    "bad spec": "write NAME=DIR",
    "bad scale": "--scale 7 is not offered",
    "reserved name": "must be letters",
    "study exists": "already exists",
    "bad ref": "is not a folder",
}


@pytest.mark.parametrize("case", sorted(BAD))
def test_init_bad_input_gets_one_clear_message(tmp_path, capsys, case):
    rc, out, err = _cli(capsys, *_bad_case(tmp_path, case))
    # the images' files are the problem: 1; a bad argument (as in `fastiqa eval`): 2
    assert rc == (1 if case in ("missing pair", "size mismatch", "unreadable") else 2), (rc, err)
    assert BAD[case] in err
    assert all(line.startswith("fastiqa human: ") for line in err.strip().splitlines())
    if case != "study exists":
        assert not os.path.exists(tmp_path / "study" / "study.json")


def test_unknown_protocol_is_an_argument_error(tmp_path, capsys):
    with pytest.raises(SystemExit) as exc:
        cli.main(["human", "init", str(tmp_path / "s"), "--ref", str(tmp_path), "--protocol", "mos"])
    assert exc.value.code == 2
    assert "invalid choice: 'mos'" in capsys.readouterr().err


def test_no_method_is_an_argument_error(tmp_path, capsys):
    with pytest.raises(SystemExit) as exc:
        cli.main(["human", "init", str(tmp_path / "s"), "--ref", str(tmp_path), "--protocol", "acr"])
    assert exc.value.code == 2
    assert "required: --method" in capsys.readouterr().err


def test_changed_stimulus_is_detected(tmp_path):
    study = make_study(tmp_path, "acr")
    path = study.stimulus_path(study.stimulus("coffee", "blur"))
    Image.fromarray(np.zeros((72, 96, 3), np.uint8)).save(path)
    with pytest.raises(StudyError, match="changed after"):
        open_study(study.folder)


def test_newer_study_format_is_a_clear_error(tmp_path):
    study = make_study(tmp_path, "acr")
    doc = json.load(open(os.path.join(study.folder, "study.json")))
    doc["format"] = 99
    json.dump(doc, open(os.path.join(study.folder, "study.json"), "w"))
    with pytest.raises(StudyError, match="newer fastiqa"):
        open_study(study.folder)


# --- plans ----------------------------------------------------------------------------------
@pytest.mark.parametrize("protocol", ["acr", "acr-hr", "dcr", "pc"])
def test_plan_counts_order_and_determinism(tmp_path, protocol):
    study = make_study(tmp_path, protocol, repeats=2, gold=3, training=2)
    plan = make_plan(study, "ann")
    n_base = len(base_trials(study))
    kinds = [t["kind"] for t in plan]
    assert kinds[:2] == ["training", "training"] and "training" not in kinds[2:]
    assert kinds.count("test") == 2 * n_base and kinds.count("gold") == 3
    assert all(a["content"] != b["content"] for a, b in zip(plan, plan[1:]))  # never the same image twice in a row
    assert make_plan(study, "ann") == plan
    assert make_plan(study, "bob") != plan
    if protocol == "pc":  # both sides are used, each pair of methods in every image
        sides = {tuple(t["methods"]) for t in plan if t["kind"] == "test"}
        assert ("blur", "noise") in sides and ("noise", "blur") in sides
    if protocol == "dcr":
        assert all(t["roles"] == ["reference", "test"] and t["methods"][0] == "reference" for t in plan)


@pytest.mark.parametrize("seed", range(5))
def test_order_no_repeat_whenever_possible(seed):
    import random

    trials = [{"content": c} for c in "aaaabbbcc"]  # 4 a's among 9: possible, only just
    out = order_no_repeat(trials, random.Random(seed))
    assert sorted(t["content"] for t in out) == sorted("aaaabbbcc")
    assert all(x["content"] != y["content"] for x, y in zip(out, out[1:]))


# --- store ----------------------------------------------------------------------------------
def test_store_is_wal_full_sync_and_append_only(tmp_path):
    study = make_study(tmp_path, "acr")
    store = study.store()
    try:
        assert store._db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        assert store._db.execute("PRAGMA synchronous").fetchone()[0] == 2  # FULL
        rid, token = store.create_rater("ann", make_plan(study, "ann"))
        store.add_event(rid, "start")
        assert store.add_vote(rid, 0, 3) is True
        assert store.add_vote(rid, 0, 5) is False  # a trial is answered once; the first answer stays
        assert store.create_rater("ann", []) is None
        with pytest.raises(StudyError, match="not in their plan"):
            store.add_vote(rid, 999, 3)
        for sql in (
            "UPDATE votes SET value = 1",
            "DELETE FROM votes",
            "DELETE FROM events",
            "UPDATE raters SET name='x'",
        ):
            with pytest.raises(sqlite3.IntegrityError, match="append-only"):
                store._db.execute(sql)
        assert [v["value"] for v in store.votes()] == [3]
    finally:
        store.close()


def test_newer_schema_is_a_clear_error(tmp_path):
    study = make_study(tmp_path, "acr")
    db = sqlite3.connect(os.path.join(study.folder, "votes.sqlite"))
    db.execute("DROP TRIGGER IF EXISTS meta_no_update")
    db.execute("UPDATE meta SET value = ? WHERE key = 'schema_version'", (str(SCHEMA_VERSION + 1),))
    db.commit()
    db.close()
    with pytest.raises(StudyError, match="newer fastiqa"):
        study.store()


def test_example_folders_then_the_readme_commands(tmp_path, capsys):
    rc, out, err = _cli(capsys, "example", tmp_path / "demo")
    assert rc == 0, err
    steps = [line.strip() for line in out.splitlines()[1:]]
    # the printed next steps are the README's worked example, with the folder given
    readme = open(os.path.join(os.path.dirname(__file__), "..", "README.md")).read().replace("\\\n    ", "")
    demo = str(tmp_path / "demo")
    for step in steps:
        assert step.replace(demo, "demo") in readme, step
    assert steps[0].split()[:3] == ["fastiqa", "human", "init"] and "--protocol pc" in steps[0]
    rc, out, err = _cli(capsys, *steps[0].split()[2:])
    assert rc == 0, err
    study = open_study(str(tmp_path / "demo" / "study"))
    assert study.methods == ["blur", "noise", "jpeg"] and study.doc["show_ref"]
    assert {s["width"] for s in study.stimuli.values()} == {256}
    rc, _, err = _cli(capsys, "example", tmp_path / "demo")
    assert rc == 2 and "not empty" in err


def test_stimulus_ids_are_random_per_build_and_say_nothing(tmp_path):
    ref, dirs = make_folders(str(tmp_path / "src"))
    a = init_study(str(tmp_path / "a"), ref, dirs, "acr")
    b = init_study(str(tmp_path / "b"), ref, dirs, "acr")
    for study in (a, b):
        ids = list(study.stimuli)
        assert all(re.fullmatch(r"[0-9a-f]{16}", sid) for sid in ids) and ids == sorted(ids)
        assert all(study.stimulus_url(sid) == f"/img/{sid}" for sid in ids)
        assert all(os.path.basename(s["file"]).startswith(sid) for sid, s in study.stimuli.items())
        # nothing in the id or its order follows the content or the method
        order = [(s["content"], s["method"]) for s in study.stimuli.values()]
        assert order != sorted(order)
    assert not set(a.stimuli) & set(b.stimuli) and a.study_id != b.study_id
    assert a.public()["study_id"] == a.study_id


def test_format_1_studies_are_served_under_hashed_ids(tmp_path):
    study = make_study(tmp_path, "acr")
    path = os.path.join(study.folder, "study.json")
    doc = json.load(open(path))
    doc["format"] = 1
    del doc["study_id"]
    doc["stimuli"] = {f"s{k:04d}": s for k, s in enumerate(doc["stimuli"].values())}
    json.dump(doc, open(path, "w"))
    old = open_study(study.folder)
    urls = [old.stimulus_url(sid) for sid in old.stimuli]
    assert all(re.fullmatch(r"/img/[0-9a-f]{16}", u) for u in urls) and "s0000" not in "".join(urls)
    assert old.stimulus_at_url(urls[0].rsplit("/", 1)[1]) == "s0000" and old.stimulus_at_url("s0000") is None


def test_show_ref_with_acr_is_an_error_and_the_title_has_a_default(tmp_path, capsys):
    ref, dirs = make_folders(str(tmp_path / "src"))
    args = ["init", tmp_path / "s", "--ref", ref, "--protocol", "acr", "--show-ref"]
    rc, _, err = _cli(capsys, *args, *[a for n, d in dirs.items() for a in ("--method", f"{n}={d}")])
    assert rc == 2 and "--show-ref is for pc" in err
    study = init_study(str(tmp_path / "study"), ref, dirs, "acr")
    assert study.public()["title"] == "Image quality study"
    assert init_study(str(tmp_path / "t"), ref, dirs, "pc", title="SR x4").public()["title"] == "SR x4"


@pytest.mark.parametrize("protocol, shows, hides", [
    ("acr", ["number keys", "F switches"], ["flicker", "together", "= for 10"]),
    ("dcr", ["flicker between the reference and the processed image", "together"], []),
    ("pc", ["\u2190 / \u2192", "flicker between A and B", "together"], ["number keys"]),
])
def test_key_hints_match_what_the_protocol_shows(tmp_path, protocol, shows, hides):
    hint = make_study(tmp_path, protocol).public()["keys_help"]
    assert all(s in hint for s in shows) and not any(h in hint for h in hides), hint


def test_study_and_store_do_not_import_each_other():
    import ast

    import fastiqa.human as human

    root = os.path.dirname(human.__file__)

    def imports(name):
        tree = ast.parse(open(os.path.join(root, name + ".py")).read())
        return {n.module for n in ast.walk(tree) if isinstance(n, ast.ImportFrom) and n.level == 1}

    assert "study" not in imports("store") and "errors" in imports("store")
    assert "store" in imports("study")


def test_tiff_stimuli_are_converted_for_the_browser(tmp_path):
    ref, dirs = make_folders(str(tmp_path / "src"), methods={"blur": ("blur", 1.0)})
    for f in os.listdir(dirs["blur"]):  # the method's images as 16-bit grey TIFF
        p = os.path.join(dirs["blur"], f)
        a = np.asarray(Image.open(p).convert("L"), dtype=np.uint16) * 257
        os.remove(p)
        Image.fromarray(a).save(p[:-4] + ".tif")
    for f in os.listdir(ref):
        p = os.path.join(ref, f)
        Image.open(p).convert("L").save(p)
    study = init_study(str(tmp_path / "study"), ref, dirs, "acr")
    s = study.stimuli[study.stimulus("coffee", "blur")]
    assert s["file"].endswith(".png") and s["source"].endswith(".tif") and s["sha256"] != s["file_sha256"]
    assert Image.open(study.stimulus_path(study.stimulus("coffee", "blur"))).mode == "L"
    open_study(study.folder)  # verifies the served files' hashes
