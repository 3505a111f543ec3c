"""Small helpers shared by tests."""

import json
import os
import socket
import subprocess
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from fake_openai import as_events, is_completion

ROOT = Path(__file__).resolve().parent.parent
NOVEL = ROOT / "data" / "translation" / "aozora"  # the Aozora-format sample, its reference and its line pairs
# each cleaned source line of ame.txt and what a good model answers for it (the scripted servers' replies)
AME_PAIRS = dict(ln.split("\t") for ln in (NOVEL / "ame.pairs.tsv").read_text("utf-8").splitlines()
                 if ln and not ln.startswith("#"))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def base_model(tiny: Path, dest: Path) -> Path:
    """A copy of the tiny model without a chat template, as a base (not Instruct) model ships."""
    import shutil
    shutil.copytree(tiny, dest)
    (dest / "chat_template.jinja").unlink(missing_ok=True)
    tc = json.loads((dest / "tokenizer_config.json").read_text())
    tc.pop("chat_template", None)
    (dest / "tokenizer_config.json").write_text(json.dumps(tc))
    return dest


def lab(*args: str, env: dict | None = None, timeout: float = 600) -> subprocess.CompletedProcess:
    """Run the `lab` CLI as a user would, in a subprocess."""
    return subprocess.run([sys.executable, "-m", "lab.cli", *args], capture_output=True, text=True,
                          timeout=timeout, cwd=ROOT, env={**os.environ, **(env or {})})


def one_error(r: subprocess.CompletedProcess, *needles: str) -> str:
    """Assert a run failed with exactly one `error:` line holding every needle (no traceback); return that line."""
    assert r.returncode != 0, r.stdout
    assert "Traceback" not in r.stderr, r.stderr
    errors = [ln for ln in r.stderr.splitlines() if ln.startswith("error: ")]
    assert len(errors) == 1, r.stderr
    for n in needles:
        assert n in errors[0], errors[0]
    return errors[0]


def tiny_notebook(path: Path, fail: bool) -> Path:
    """A four-cell notebook for headless runs: parameters, a journal record, then a cell that fails or not."""
    import nbformat  # only the runner and journal tests write notebooks

    nb = nbformat.v4.new_notebook()
    p = nbformat.v4.new_code_cell("profile = 'tiny'  # profile\nvalue = 2  # a number")
    p.metadata["tags"] = ["parameters"]
    nb.cells = [nbformat.v4.new_markdown_cell("# test"), p,
                nbformat.v4.new_code_cell("from lab import journal\njournal.record('answer', value * 21)"),
                nbformat.v4.new_code_cell("raise ValueError('boom on purpose')" if fail else "print('fine')")]
    nbformat.write(nb, path)
    return path


class LocalServer:
    """A real HTTP server on 127.0.0.1 in a daemon thread; subclasses hand `_serve` their handler class."""

    def _serve(self, handler: type) -> None:
        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self.httpd.daemon_threads = True
        self.port = self.httpd.server_address[1]
        self.url = f"http://127.0.0.1:{self.port}/v1"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()


class FakeServer(LocalServer):
    """A real HTTP server on 127.0.0.1 whose handler is a function (path, body) -> (status, payload|None)."""

    def __init__(self, handler):
        outer = self
        self.requests: list[tuple[str, dict]] = []

        class H(BaseHTTPRequestHandler):
            def _go(self):
                n = int(self.headers.get("Content-Length") or 0)
                body = json.loads(self.rfile.read(n) or b"{}") if n else {}
                outer.requests.append((self.path, body))
                status, payload = handler(self.path, body)
                if payload is None:  # hang: never answer (the client's timeout must fire)
                    threading.Event().wait(30)
                    return
                sse = body.get("stream") is True and status == 200 and is_completion(payload)
                data = as_events(payload) if sse else \
                    json.dumps(payload).encode() if not isinstance(payload, bytes) else payload
                self.send_response(status)
                self.send_header("Content-Type", "text/event-stream" if sse else "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            do_GET = do_POST = _go

            def log_message(self, *a):
                pass

        self._serve(H)


class Trickle(LocalServer):
    """A real OpenAI-like server that streams each reply piece by piece (pieces(body) -> list of str), `gap`
    seconds apart; the requests listed in `stall` (numbered from 0) stop after their first piece, never finishing."""

    def __init__(self, pieces, gap: float, stall: tuple[int, ...] = ()):
        outer, self.bodies = self, []

        class H(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def _json(self, payload):
                data = json.dumps(payload).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def do_GET(self):
                self._json({"object": "list", "data": [{"id": "m", "max_model_len": 4096}]})

            def do_POST(self):
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                if self.path.endswith("/tokenize"):
                    self._json({"count": len(json.dumps(body, ensure_ascii=False))})
                    return
                n = len(outer.bodies)
                outer.bodies.append(body)
                self.send_response(200)
                self.send_header("Content-Type", "text/event-stream")
                self.send_header("Connection", "close")
                self.end_headers()
                for delta in [{"content": p} for p in pieces(body)] + [{}]:
                    ev = {"id": "x", "object": "chat.completion.chunk", "created": 0, "model": "m",
                          "choices": [{"index": 0, "delta": delta, "finish_reason": None if delta else "stop"}]}
                    self.wfile.write(f"data: {json.dumps(ev)}\n\n".encode())
                    self.wfile.flush()
                    if n in stall:
                        time.sleep(30)  # stalled mid-reply: the client's timeout must fire
                        return
                    time.sleep(gap)
                self.wfile.write(b"data: [DONE]\n\n")

            def log_message(self, *a):
                pass

        self._serve(H)


def source_of(body: dict, preface: str) -> str:
    """The text a translation request asks for: the lines after the preface's line (the preface and the line-count
    note) in the last user turn holding it (a retry's feedback comes after that turn)."""
    turn = next(m["content"] for m in reversed(body["messages"]) if m["role"] == "user" and preface in m["content"])
    return turn.rsplit(preface, 1)[1].split("\n", 1)[1]


def openai_fake(reply, max_model_len: int = 4096, model: str = "fake", adapters: tuple[str, ...] = ()):
    """A real local OpenAI-like server: reply(body) -> (status, content | None for a hang, finish_reason).

    content may be a dict: the message's fields (e.g. content and reasoning_content, as vLLM's reasoning
    parser sends them). `adapters`: more served names after `model`, as vLLM lists LoRA modules."""
    def handler(path, body):
        if path.endswith("/models"):
            return 200, {"object": "list", "data": [{"id": m, "object": "model", "max_model_len": max_model_len}
                                                    for m in (model, *adapters)]}
        if path.endswith("/tokenize"):
            text = body.get("prompt") or "".join(m["content"] for m in body.get("messages", []))
            return 200, {"count": len(text)}
        status, content, finish = reply(body)
        if content is None:
            return status, None
        if status != 200:
            return status, {"error": {"message": content}}
        msg = {"role": "assistant", **(content if isinstance(content, dict) else {"content": content})}
        return 200, {"id": "x", "object": "chat.completion", "created": 0, "model": model,
                     "choices": [{"index": 0, "finish_reason": finish, "message": msg}],
                     "usage": {"prompt_tokens": 10, "completion_tokens": len(str(content)), "total_tokens": 10}}
    return FakeServer(handler)


def canned_chat_server(replies: list[str]) -> FakeServer:
    """A real local OpenAI-like server: the canned chat replies in order, then 503 (an engine that died)."""
    it = iter(replies)

    def handler(path, body):
        if path.endswith("/models"):
            return 200, {"object": "list", "data": [{"id": "canned", "object": "model", "max_model_len": 8192}]}
        if path.endswith("/tokenize"):
            return 200, {"count": sum(len(m["content"]) for m in body["messages"]) // 3}
        text = next(it, None)
        if text is None:
            return 503, {"error": {"message": "engine dead", "type": "ServiceUnavailable", "code": 503}}
        return 200, {"id": "x", "object": "chat.completion", "created": 0, "model": "canned",
                     "choices": [{"index": 0, "finish_reason": "stop",
                                  "message": {"role": "assistant", "content": text}}],
                     "usage": {"prompt_tokens": 100, "completion_tokens": 50, "total_tokens": 150}}
    return FakeServer(handler)


def legacy_zip(path: Path, members: dict[str, bytes]) -> Path:
    """A zip as Japanese Windows packs it (Aozora Bunko's among them): member names in CP932, without the UTF-8
    flag, which Python's writer would set for any name that is not ASCII."""
    import zipfile

    class Cp932Info(zipfile.ZipInfo):
        def _encodeFilenameFlags(self):  # noqa: N802 (zipfile's own name)
            return self.filename.encode("cp932"), self.flag_bits & ~0x800
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as z:
        for name, data in members.items():
            z.writestr(Cp932Info(name, (2024, 1, 1, 0, 0, 0)), data, zipfile.ZIP_DEFLATED)
    return path
