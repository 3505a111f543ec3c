"""Replies bounded in bytes and in time between events: a server that pads for ever or sends one endless line is
one `error:` line within the timeout's bound and at bounded memory, never a wait without end."""

import gzip
import json
import time
from http.server import BaseHTTPRequestHandler

import pytest
from helpers import LocalServer, lab, one_error

from lab import bounded
from lab.client import Client

REPLY = {"id": "x", "object": "chat.completion.chunk", "created": 0, "model": "m",
         "choices": [{"index": 0, "delta": {"content": "你好"}, "finish_reason": "stop"}]}


class Hostile(LocalServer):
    """A real server on 127.0.0.1 that lists a model and answers every chat request the way `mode` says."""

    def __init__(self, mode: str):
        self.chats = 0
        outer = self

        class H(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def _send(self, data: bytes, ctype: str, extra: dict | None = None):
                self.send_response(200)
                self.send_header("Content-Type", ctype)
                for k, v in (extra or {}).items():
                    self.send_header(k, v)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def do_GET(self):
                self._send(json.dumps({"object": "list", "data": [{"id": "m", "max_model_len": 4096}]}).encode(),
                           "application/json")

            def do_POST(self):
                self.rfile.read(int(self.headers["Content-Length"]))
                if self.path.endswith("/tokenize"):
                    self._send(b'{"count": 9}', "application/json")
                    return
                outer.chats += 1
                events = f"data: {json.dumps(REPLY)}\n\ndata: [DONE]\n\n".encode()
                if mode == "gzip":
                    self._send(gzip.compress(events), "text/event-stream", {"Content-Encoding": "gzip"})
                    return
                self.send_response(200)
                self.send_header("Content-Type", "text/event-stream")
                self.send_header("Connection", "close")
                self.end_headers()
                try:
                    if mode == "ping":  # a keep-alive comment every 0.2 s: each read is within any timeout
                        while True:
                            self.wfile.write(b": ping\n\n")
                            self.wfile.flush()
                            time.sleep(0.2)
                    self.wfile.write(b'data: {"id": "')  # one line that never ends
                    while True:
                        self.wfile.write(b"x" * (1 << 20))
                except OSError:  # the client hung up: what the bound is for
                    pass

            def log_message(self, *a):
                pass

        self._serve(H)


@pytest.fixture
def hostile(request):
    srv = Hostile(request.param)
    yield srv
    srv.close()


@pytest.mark.parametrize("hostile", ["ping"], indirect=True)
def test_padding_without_events_times_out_like_a_silent_server(hostile, tmp_path):
    t0 = time.monotonic()
    one_error(lab("chat", "hi", "--base-url", hostile.url, "--timeout", "2", timeout=60), hostile.url,
               "did not answer in time")
    (tmp_path / "in.txt").write_text("駅に着いた。\n", encoding="utf-8")
    one_error(lab("translate", str(tmp_path / "in.txt"), "-o", str(tmp_path / "o"), "--base-url", hostile.url,
                   "--timeout", "2", timeout=120), hostile.url, "APITimeoutError", "kept in")
    # each try ends 2 s after its last event, and the translator's mid-reply re-sends are bounded too
    assert time.monotonic() - t0 < 60 and hostile.chats >= 2


@pytest.mark.parametrize("hostile", ["line"], indirect=True)
def test_an_endless_line_stops_at_the_reply_cap(hostile, tmp_path):
    for stream in ([], ["--no-stream"]):
        one_error(lab("chat", "hi", "--base-url", hostile.url, *stream, timeout=60), hostile.url,
                   f"a reply over {bounded.MAX_REPLY_BYTES >> 20} MiB")
    (tmp_path / "in.txt").write_text("駅に着いた。\n", encoding="utf-8")
    one_error(lab("translate", str(tmp_path / "in.txt"), "-o", str(tmp_path / "o"), "--base-url", hostile.url,
                   timeout=60), "MiB", "kept in")
    assert hostile.chats == 3  # a reply past the cap is not asked for again
    from lab.bench import light  # the benchmark's own aiohttp client: a failed request, not 600 s of bytes
    results, wall = light.run(hostile.url, "EMPTY", "m", ["hi"], 8, concurrency=1, timeout=60)
    assert "MiB" in (results[0].error or "") and wall < 30


@pytest.mark.parametrize("hostile", ["gzip"], indirect=True)
def test_a_compressed_reply_is_refused_since_its_size_on_the_wire_bounds_nothing(hostile):
    with pytest.raises(Exception, match="gzip though only identity"):
        Client(hostile.url, max_retries=0).complete("hi", max_tokens=8)
