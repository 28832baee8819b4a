"""`fastiqa human serve` under hostile or broken clients (raw sockets): Content-Length
rules, body size, socket timeouts, malformed JSON / Host / URL, methods, connection,
session and event caps; votes in plan order; names matched trimmed and case-folded.
Every refusal is a 4xx with a JSON error, never a 500 and never a server left waiting."""
import json
import socket
import threading

import pytest
from _human_support import make_study

from fastiqa.human import server as server_mod
from fastiqa.human.errors import OrderError
from fastiqa.human.plan import make_plan
from fastiqa.human.store import name_key

WAIT_S = 20  # how long a test waits for an answer the server must give at once (a hang fails the test)


class LiveServer:
    """A StudyServer with the given limits on a free port, in a background thread."""

    def __init__(self, study_dir, **limits):
        self.server = server_mod.make_server(study_dir, port=0, **limits)
        self.port = self.server.server_address[1]
        # a short poll: shutdown() waits up to one poll interval (0.5 s by default, per test)
        threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True).start()

    def stop(self):
        self.server.shutdown()
        self.server.server_close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.stop()


def live(tmp_path, **limits):
    """A LiveServer with `limits` on a fresh ACR study (use as a context manager)."""
    return LiveServer(make_study(tmp_path, "acr").folder, **limits)


@pytest.fixture
def srv(tmp_path):
    study = make_study(tmp_path, "acr", training=1, gold=1)
    s = LiveServer(study.folder)
    yield s
    s.stop()


def raw(port, data, wait=WAIT_S, close_write=False):
    """Send bytes, return (status, json body or None, raw reply); status None when the server closed silently."""
    with socket.create_connection(("127.0.0.1", port), timeout=wait) as s:
        try:
            s.sendall(data)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the server answered and closed before reading everything: what it should do
        if close_write:
            s.shutdown(socket.SHUT_WR)
        reply = b""
        try:
            while True:
                chunk = s.recv(65536)
                if not chunk:
                    break
                reply += chunk
        except ConnectionResetError:
            pass
    if not reply:
        return None, None, reply
    head, _, body = reply.partition(b"\r\n\r\n")
    status = int(head.split(b" ", 2)[1])
    try:
        doc = json.loads(body)
    except ValueError:
        doc = None
    return status, doc, reply


def post(path, body=b"", headers=()):
    lines = [f"POST {path} HTTP/1.1", "Host: localhost", *headers]
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


def session(srv, name):
    body = json.dumps({"name": name}).encode()
    return raw(srv.port, post("/api/session", body, [f"Content-Length: {len(body)}"]))


def vote(srv, token, pos, value=3):
    body = json.dumps({"pos": pos, "value": value}).encode()
    return raw(srv.port, post("/api/vote", body, [f"Content-Length: {len(body)}", f"X-Rater-Token: {token}"]))


# --- Content-Length and body size: refused without reading ---------------------------------------
@pytest.mark.parametrize("headers, status", [
    ([], 411),
    (["Content-Length: -1"], 400),
    (["Content-Length: abc"], 400),
    (["Content-Length: +12"], 400),
    (["Content-Length: 1_2"], 400),
    (["Content-Length: 12", "Content-Length: 13"], 400),
    ([f"Content-Length: {50 * 2**20}"], 413),
    ([f"Content-Length: {300 * 2**20}"], 413),
    (["Transfer-Encoding: chunked"], 411),
], ids=["missing", "negative", "not-a-number", "signed", "underscore", "two-values", "50MB", "300MB", "chunked"])
def test_bad_content_length_is_refused_without_reading(srv, headers, status):
    # the connection stays open and more body could follow: a server that reads "until the end"
    # never answers, and this test fails on its timeout
    got, doc, _ = raw(srv.port, post("/api/session", b'{"name":"a"}  ', headers))  # 12 bytes of JSON, then more
    assert got == status and "error" in doc
    assert srv.server.store.raters() == []


def test_a_large_body_is_refused_with_413_and_nothing_stored(srv, tmp_path):
    pad = b" " * (server_mod.MAX_BODY + 1)
    body = b'{"name": "ann"' + pad + b"}"
    got, doc, _ = raw(srv.port, post("/api/session", body, [f"Content-Length: {len(body)}"]))
    assert got == 413 and str(server_mod.MAX_BODY) in doc["error"]
    assert srv.server.store.raters() == []


def test_a_body_shorter_than_its_length_times_out_with_408(tmp_path):
    with live(tmp_path, timeout_s=1.0) as s:
        got, doc, _ = raw(s.port, post("/api/session", b'{"na', ["Content-Length: 40"]))
        assert got == 408


def test_a_silent_connection_is_closed_after_the_timeout(tmp_path):
    with live(tmp_path, timeout_s=1.0) as s:
        got, _, reply = raw(s.port, b"POST /api/vote HTTP/1.1\r\nHost: local")  # and then nothing
        assert got is None and reply == b""  # closed by the server, not left open


# --- malformed requests: 4xx, never 500 -----------------------------------------------------------
def test_deeply_nested_json_is_a_400(srv):
    body = b"[" * 40000 + b"]" * 40000
    got, doc, _ = raw(srv.port, post("/api/session", body, [f"Content-Length: {len(body)}"]))
    assert got in (400, 413)  # 80 kB is over the body limit; the same nesting under it:
    body = b'{"name": ' + b"[" * 8000 + b"]" * 8000 + b"}"
    assert len(body) <= server_mod.MAX_BODY
    got, doc, _ = raw(srv.port, post("/api/session", body, [f"Content-Length: {len(body)}"]))
    assert got == 400 and "not JSON" in doc["error"]


@pytest.mark.parametrize("body", [b"\xff\xfe", b"NaN", b'{"name": "a"', b"null", b'"x"'],
                         ids=["not-utf8", "nan", "truncated", "null", "string"])
def test_malformed_json_is_a_400(srv, body):
    got, doc, _ = raw(srv.port, post("/api/session", body, [f"Content-Length: {len(body)}"]))
    assert got == 400 and "error" in doc


@pytest.mark.parametrize("host", ["[", "[::1", "localhost:99999999999", "a b", "local\x01host"],
                         ids=["bracket", "open-ipv6", "bad-port", "space", "control"])
def test_bad_host_header_is_a_400(srv, host):
    got, doc, _ = raw(srv.port, f"GET /api/study HTTP/1.1\r\nHost: {host}\r\n\r\n".encode("latin-1"))
    assert got in (400, 403) and "error" in doc


def test_two_host_headers_and_a_broken_url_are_400(srv):
    got, _, _ = raw(srv.port, b"GET /api/study HTTP/1.1\r\nHost: localhost\r\nHost: evil.example\r\n\r\n")
    assert got == 400
    got, _, _ = raw(srv.port, b"GET http://[/x HTTP/1.1\r\nHost: localhost\r\n\r\n")
    assert got == 400


@pytest.mark.parametrize("method", ["PUT", "DELETE", "PATCH", "OPTIONS", "HEAD"])
def test_other_methods_are_405(srv, method):
    request = f"{method} /api/vote HTTP/1.1\r\nHost: localhost\r\nContent-Length: 0\r\n\r\n"
    got, _, reply = raw(srv.port, request.encode())
    assert got == 405 and b"Allow: GET, POST" in reply


# --- connection, session and event caps -----------------------------------------------------------
def test_connections_beyond_the_cap_are_closed_at_once(tmp_path):
    study = make_study(tmp_path, "acr")
    s = LiveServer(study.folder, max_connections=2, timeout_s=30)
    idle = [socket.create_connection(("127.0.0.1", s.port)) for _ in range(2)]
    try:
        for c in idle:  # both connected and taken by their handlers (which wait for a request line)
            c.sendall(b"G")
        got, _, reply = raw(s.port, b"GET /api/study HTTP/1.1\r\nHost: localhost\r\n\r\n")
        assert got is None and reply == b""  # a third one: closed without service
    finally:
        for c in idle:
            c.close()
    try:
        for _ in range(50):  # the slots come back once the idle connections are gone
            got, _, _ = raw(s.port, b"GET /api/study HTTP/1.1\r\nHost: localhost\r\n\r\n")
            if got == 200:
                break
        assert got == 200
    finally:
        s.stop()


def test_sessions_per_study_are_capped(tmp_path):
    with live(tmp_path, max_raters=3) as s:
        assert [session(s, f"r{k}")[0] for k in range(3)] == [200, 200, 200]
        got, doc, _ = session(s, "r3")
        assert got == 429 and "limit of 3 rater sessions" in doc["error"] and "--max-raters" in doc["error"]
        assert len(s.server.store.raters()) == 3


def test_event_size_and_count_are_capped(srv, monkeypatch):
    token = session(srv, "ann")[1]["token"]

    def event(data):
        body = json.dumps({"kind": "page_event", "data": data}).encode()
        return raw(srv.port, post("/api/event", body, [f"Content-Length: {len(body)}", f"X-Rater-Token: {token}"]))

    got, doc, _ = event({"x": "y" * server_mod.MAX_EVENT_BYTES})
    assert got == 413 and "event data too large" in doc["error"]
    monkeypatch.setattr(server_mod, "MAX_EVENTS", 4)  # the session's "start" event counts
    assert [event({"k": 1})[0] for _ in range(4)] == [200, 200, 200, 429]
    assert len([e for e in srv.server.store.events() if e["kind"] == "page_event"]) == 3


# --- raters: names, order ------------------------------------------------------------------------
@pytest.mark.parametrize("first, second", [(" Carl-Careful ", "carl-careful"), ("Ann  Lee", "ann lee"),
                                           ("STRASSE", "stra\u00dfe"), ("\uff21nn", "ann")],
                         ids=["spaces-case", "inner-spaces", "casefold", "nfkc"])
def test_names_are_matched_trimmed_and_case_folded(srv, first, second):
    got, doc, _ = session(srv, first)
    assert got == 200 and doc["name"] == " ".join(first.split())
    got, doc, _ = session(srv, second)
    assert got == 409 and "Resume link" in doc["error"] and "ignoring case" in doc["error"]
    assert len(srv.server.store.raters()) == 1 and name_key(first) == name_key(second)


def test_votes_come_in_plan_order_so_training_cannot_be_skipped(srv):
    token = session(srv, "ann")[1]["token"]
    plan = srv.server.store.plan(srv.server.store.rater(token=token)["id"])
    assert plan[0]["kind"] == "training" and plan[1]["kind"] != "training"
    got, doc, _ = vote(srv, token, 1)  # a scored trial before the training trial
    assert got == 409 and "answer trial 0 first" in doc["error"]
    assert vote(srv, token, 0)[0] == 200
    got, doc, _ = vote(srv, token, 2)  # nor can any trial be skipped later
    assert got == 409
    got, doc, _ = vote(srv, token, 1)
    assert got == 200 and doc["stored"] and doc["trial"]["pos"] == 2
    got, doc, _ = vote(srv, token, 0, value=5)  # a retry of an answered trial: 200, stored once
    assert got == 200 and doc["stored"] is False
    assert [(v["pos"], v["value"]) for v in srv.server.store.votes()] == [(0, 3), (1, 3)]


def test_store_refuses_out_of_order_votes(tmp_path):
    study = make_study(tmp_path, "acr", training=2)
    store = study.store()
    try:
        rid, _ = store.create_rater("ann", make_plan(study, "ann"))
        with pytest.raises(OrderError, match="answer trial 0 first"):
            store.add_vote(rid, 2, 3)
        assert store.add_vote(rid, 0, 3) and store.next_pos(rid) == 1
        assert store.add_vote(rid, 5, 3, in_order=False)  # simulations may say so
    finally:
        store.close()
