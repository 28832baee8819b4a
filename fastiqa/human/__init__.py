"""Human assessment kit: build a rating study from the folders `fastiqa eval`
scores, serve it to raters in the browser, store every vote, analyse the votes
by the standard methods and measure how well each metric predicts them.

    from fastiqa import human
    study = human.init_study("study/", ref_dir="hr/", methods={"a": "a/", "b": "b/"}, protocol="acr")
    human.serve("study/")                      # http://127.0.0.1:8765/ for the raters
    report = human.analyze("study/", out_dir="report/")
    human.export("study/", "csv", "votes.csv")

`fastiqa human example OUT` (fastiqa.human.example) writes folders for a first study
from the shipped photographs.

Nothing here imports scipy or matplotlib until analysis needs them (the
`human` extra: pip install "fastiqa[human]").
"""
from .study import PROTOCOLS, Study, StudyError, init_study, open_study  # noqa: F401


def serve(study_dir, host="127.0.0.1", port=8765, quiet=False, max_raters=200):
    """Serve the study to raters until interrupted (see fastiqa.human.server for its limits)."""
    from .server import serve as _serve

    return _serve(study_dir, host=host, port=port, quiet=quiet, max_raters=max_raters)


def analyze(study_dir, out_dir, metrics=None, **kwargs):
    """Analyse the votes into out_dir (JSON, CSV, PNG, summary.txt); returns the report dict."""
    from .analyze import analyze as _analyze

    return _analyze(study_dir, out_dir, metrics=metrics, **kwargs)


def export(study_dir, fmt, out_path):
    """Write the votes as csv, sureal (dataset .py) or pwcmp (long CSV)."""
    from .export import export as _export

    return _export(study_dir, fmt, out_path)


__all__ = ["PROTOCOLS", "Study", "StudyError", "init_study", "open_study", "serve", "analyze", "export"]
