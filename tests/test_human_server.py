"""`fastiqa human serve`: the JSON API over real HTTP (standard library client):
sessions, votes only for the rater's own trials, each stored once, no path
traversal, restarts lose nothing, raters in parallel."""
import json
import threading
import urllib.error
import urllib.request

import pytest
from _human_support import LiveServer, make_study


def call(url, method, path, body=None, token=None, raw=None):
    headers = {"Content-Type": "application/json"}
    if token:
        headers["X-Rater-Token"] = token
    data = raw if raw is not None else (json.dumps(body).encode() if body is not None else None)
    req = urllib.request.Request(url.rstrip("/") + path, method=method, data=data, headers=headers)
    try:
        with urllib.request.urlopen(req, timeout=30) as r:
            payload = r.read()
            return r.status, (json.loads(payload) if r.headers["Content-Type"] == "application/json" else payload)
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read())


@pytest.fixture
def served(tmp_path):
    study = make_study(tmp_path, "acr", gold=2, training=1)
    srv = LiveServer(study.folder)
    yield study, srv
    srv.stop()


def _session(srv, name):
    status, doc = call(srv.url, "POST", "/api/session", {"name": name})
    assert status == 200, doc
    return doc["token"]


def _answer_all(srv, token, value=3):
    status, state = call(srv.url, "GET", "/api/next", token=token)
    while not state["done"]:
        status, state = call(srv.url, "POST", "/api/vote", {"pos": state["trial"]["pos"], "value": value,
                                                            "response_ms": 900, "viewport_w": 1200,
                                                            "viewport_h": 800, "dpr": 1.0}, token=token)
        assert status == 200 and state["stored"], state
    return state


def test_binds_localhost_by_default(served):
    _, srv = served
    assert srv.server.server_address[0] == "127.0.0.1"


def test_page_and_study_info(served):
    study, srv = served
    status, page = call(srv.url, "GET", "/")
    assert status == 200 and b"/static/app.js" in page and b"http" not in page.replace(b"http-equiv", b"")
    status, info = call(srv.url, "GET", "/api/study")
    assert info["protocol"] == "acr" and [v for v, _ in info["labels"]] == [1, 2, 3, 4, 5]
    assert "stimuli" not in info and "reference_dir" not in info  # no paths or hashes go out


def test_a_rater_completes_and_every_vote_is_stored_once(served):
    study, srv = served
    token = _session(srv, "ann")
    state = _answer_all(srv, token)
    assert state["done"] and state["answered"] == state["total"] == 9 + 2 + 1
    store = study.store()
    try:
        votes = store.votes()
    finally:
        store.close()
    assert sorted(v["pos"] for v in votes) == list(range(12))
    assert all(v["viewport_w"] == 1200 and v["dpr"] == 1.0 and v["response_ms"] == 900 for v in votes)


def test_duplicate_vote_is_stored_once(served):
    study, srv = served
    token = _session(srv, "ann")
    for value, stored in ((4, True), (2, False)):
        status, doc = call(srv.url, "POST", "/api/vote", {"pos": 0, "value": value}, token=token)
        assert status == 200 and doc["stored"] is stored
    store = study.store()
    try:
        assert [(v["pos"], v["value"]) for v in store.votes()] == [(0, 4)]
    finally:
        store.close()


@pytest.mark.parametrize("body, message", [
    ({"pos": 99, "value": 3}, "pos must be a trial of this session"),
    ({"pos": -1, "value": 3}, "pos must be"),
    ({"pos": "0", "value": 3}, "pos must be"),
    ({"pos": 0, "value": 6}, "value must be one of [1, 2, 3, 4, 5]"),
    ({"pos": 0, "value": True}, "value must be"),
    ({"pos": 0, "value": 2.5}, "value must be"),
], ids=["pos-beyond", "pos-negative", "pos-string", "value-off-scale", "value-bool", "value-float"])
def test_bad_votes_are_refused(served, body, message):
    _, srv = served
    token = _session(srv, "ann")
    status, doc = call(srv.url, "POST", "/api/vote", body, token=token)
    assert status == 400 and message in doc["error"]


def test_votes_need_a_session_token(served):
    _, srv = served
    assert call(srv.url, "POST", "/api/vote", {"pos": 0, "value": 3})[0] == 401
    assert call(srv.url, "POST", "/api/vote", {"pos": 0, "value": 3}, token="forged")[0] == 401
    assert call(srv.url, "GET", "/api/next")[0] == 401


def test_a_rater_writes_only_their_own_data(served):
    study, srv = served
    ann, bob = _session(srv, "ann"), _session(srv, "bob")
    call(srv.url, "POST", "/api/vote", {"pos": 0, "value": 5}, token=ann)
    assert call(srv.url, "GET", "/api/next", token=bob)[1]["answered"] == 0
    status, doc = call(srv.url, "POST", "/api/session", {"name": "ann"})  # taking over a name is refused
    assert status == 409 and "already has a session" in doc["error"]
    status, doc = call(srv.url, "POST", "/api/session", {"token": ann})  # resuming with the token works
    assert status == 200 and doc["name"] == "ann"


@pytest.mark.parametrize("path", ["/img/../study.json", "/img/..%2Fstudy.json", "/img/s0000/../../study.json",
                                  "/static/../study.json", "/votes.sqlite", "/stimuli/s0000.png", "/img/",
                                  "/img/%2e%2e/%2e%2e/etc/passwd", "/static/app.py"])
def test_no_path_traversal(served, path):
    _, srv = served
    status, doc = call(srv.url, "GET", path)
    assert status == 404 and isinstance(doc, dict)


def test_images_are_served_by_stimulus_id(served):
    study, srv = served
    sid = study.stimulus("coffee", "jpeg")
    status, data = call(srv.url, "GET", f"/img/{sid}")
    assert status == 200 and data == open(study.stimulus_path(sid), "rb").read()


@pytest.mark.parametrize("raw, status", [(b"not json", 400), (b"[1, 2]", 400), (b"{" + b" " * 70000 + b"}", 413)],
                         ids=["not-json", "not-object", "too-large"])
def test_bad_bodies(served, raw, status):
    _, srv = served
    assert call(srv.url, "POST", "/api/session", raw=raw)[0] == status


def test_bad_names_and_events(served):
    _, srv = served
    assert call(srv.url, "POST", "/api/session", {"name": ""})[0] == 400
    assert call(srv.url, "POST", "/api/session", {"name": "x" * 65})[0] == 400
    token = _session(srv, "ann")
    assert call(srv.url, "POST", "/api/event", {"kind": "break_prompt", "data": {"m": 30}}, token=token)[0] == 200
    assert call(srv.url, "POST", "/api/event", {"kind": "DROP TABLE"}, token=token)[0] == 400


def test_restart_loses_nothing(tmp_path):
    study = make_study(tmp_path, "pc", gold=1)
    srv = LiveServer(study.folder)
    token = _session(srv, "ann")
    for _ in range(3):
        state = call(srv.url, "GET", "/api/next", token=token)[1]
        call(srv.url, "POST", "/api/vote", {"pos": state["trial"]["pos"], "value": 1}, token=token)
    srv.stop()
    srv = LiveServer(study.folder)
    try:
        state = call(srv.url, "GET", "/api/next", token=token)[1]
        assert state["answered"] == 3 and state["trial"]["pos"] == 3
        assert _answer_all(srv, token, value=0)["done"]
    finally:
        srv.stop()


def test_raters_in_parallel(served):
    study, srv = served
    tokens = [_session(srv, f"r{k}") for k in range(4)]
    errors = []

    def run(token):
        try:
            _answer_all(srv, token, value=4)
        except Exception as exc:  # reported below
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(t,)) for t in tokens]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    store = study.store()
    try:
        votes = store.votes()
    finally:
        store.close()
    assert len(votes) == 4 * 12 and len({(v["rater"], v["pos"]) for v in votes}) == 48


def test_bad_content_length_is_a_400_not_a_dropped_connection(served):
    import http.client

    _, srv = served
    conn = http.client.HTTPConnection("127.0.0.1", srv.port, timeout=30)
    conn.putrequest("POST", "/api/session")
    conn.putheader("Content-Length", "abc")
    conn.endheaders()
    r = conn.getresponse()
    assert r.status == 400 and "Content-Length" in json.loads(r.read())["error"]
    conn.close()


@pytest.mark.parametrize("host, status", [("evil.example", 403), ("evil.example:8765", 403), ("localhost", 200)])
def test_foreign_host_header_is_refused_on_a_local_server(served, host, status):
    import http.client

    _, srv = served
    conn = http.client.HTTPConnection("127.0.0.1", srv.port, timeout=30)
    conn.request("GET", "/api/study", headers={"Host": host})
    assert conn.getresponse().status == status
    conn.close()


@pytest.mark.parametrize("protocol, scale, good, bad", [("acr", 11, (0, 10), (11, -1)), ("acr", 9, (1, 9), (0, 10)),
                                                       ("pc", None, (0, 1), (2, -1))],
                         ids=["acr11", "acr9", "pc"])
def test_vote_values_follow_the_scale(tmp_path, protocol, scale, good, bad):
    study = make_study(tmp_path, protocol, **({"scale": scale} if scale else {}))
    srv = LiveServer(study.folder)
    try:
        token = _session(srv, "ann")
        for pos, v in enumerate(good):
            assert call(srv.url, "POST", "/api/vote", {"pos": pos, "value": v}, token=token)[0] == 200
        for v in bad:
            assert call(srv.url, "POST", "/api/vote", {"pos": 5, "value": v}, token=token)[0] == 400
    finally:
        srv.stop()
