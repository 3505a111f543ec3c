"""Small helpers shared by tests."""

import json
import os
import socket
import subprocess
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def lab(*args: str, env: dict | None = None, timeout: float = 600) -> subprocess.CompletedProcess:
    """Run the `lab` CLI as a user would, in a subprocess."""
    return subprocess.run([sys.executable, "-m", "lab.cli", *args], capture_output=True, text=True,
                          timeout=timeout, cwd=ROOT, env={**os.environ, **(env or {})})


class FakeServer:
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
                data = json.dumps(payload).encode() if not isinstance(payload, bytes) else payload
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            do_GET = do_POST = _go

            def log_message(self, *a):
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), H)
        self.httpd.daemon_threads = True
        self.port = self.httpd.server_address[1]
        self.url = f"http://127.0.0.1:{self.port}/v1"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()


def source_of(body: dict, preface: str) -> str:
    """The text a translation request asks for: after the preface in the last user turn holding it (a retry's
    feedback comes after that turn)."""
    turn = next(m["content"] for m in reversed(body["messages"])
                if m["role"] == "user" and preface + "\n" in m["content"])
    return turn.rsplit(preface + "\n", 1)[1]


def openai_fake(reply, max_model_len: int = 4096, model: str = "fake"):
    """A real local OpenAI-like server: reply(body) -> (status, content | None for a hang, finish_reason).

    content may be a dict: the message's fields (e.g. content and reasoning_content, as vLLM's reasoning
    parser sends them)."""
    def handler(path, body):
        if path.endswith("/models"):
            return 200, {"object": "list", "data": [{"id": model, "object": "model", "max_model_len": max_model_len}]}
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
