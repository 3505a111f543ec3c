"""A deterministic OpenAI-compatible server in its own process (so a test can SIGKILL it mid-run).

    python tests/fake_openai.py PORT LOG [DELAY_S]

Chat replies are a pure function of the request's source text, seed, temperature and frequency penalty:
every line becomes Chinese-looking text whose characters depend on that seed, and some requests
(chosen by the same hash) come back with a line missing, so retries and splits happen as on a real
model. Two such servers answer a request identically; a retry that changed its seed would show in the
output. Every finished reply is appended to LOG (one JSON line: source hash, seed, temperature).
"""

import hashlib
import json
import sys
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

ZH = ("的一是在不了有和人这中大为上个国我以要他时来用们生到作地于出就分对成会可主发年动同工也能下过子说产种"
      "面而方后多定行学法所民得经十三之进着等部度家电力里如水化高自二理起小物现实加量都两体制机当使点从业本"
      "去把性好应开它合还因由其些然前外天政四日那社义事平形相全表间样与关各重新线内数正心反你明看原又么利比"
      "或但质气第向道命此变条只没结解问意建月公无系军很情者最立代想已通并提直题党程展五果料象员革位入常文总"
      "次品式活设及管特件长求老头基资边流路级少图山统接知较将组见计别她手角期根论运农指几九区强放决西被干做"
      "必战先回则任取据处理府研")


def is_completion(payload: object) -> bool:
    """A non-streamed chat completion with a choice (what a handler returns for a good reply)."""
    return isinstance(payload, dict) and payload.get("object") == "chat.completion" and bool(payload.get("choices"))


def as_events(payload: dict) -> bytes:
    """A chat completion as the server-sent events vLLM streams for it: the message as one delta, the finish
    reason, the usage, [DONE] (a handler writes replies once; a streaming client gets them as a stream)."""
    choice = payload["choices"][0]
    head = {k: payload.get(k) for k in ("id", "created", "model")} | {"object": "chat.completion.chunk"}
    events = [{**head, "choices": [{"index": 0, "delta": choice["message"], "finish_reason": None}]},
              {**head, "choices": [{"index": 0, "delta": {}, "finish_reason": choice.get("finish_reason")}]}]
    if payload.get("usage"):
        events.append({**head, "choices": [], "usage": payload["usage"]})
    return "".join(f"data: {json.dumps(e, ensure_ascii=False)}\n\n" for e in events).encode() + b"data: [DONE]\n\n"


def reply_for(body: dict) -> tuple[str, str]:
    msgs = body["messages"]
    if len(msgs) >= 3 and msgs[-2]["role"] == "assistant" and "\n" not in msgs[-1]["content"]:
        msgs = msgs[:-2]  # a retry's feedback (one line) after the rejected reply: the source is before them
    source = msgs[-1]["content"].split("\n", 1)[1] if "\n" in msgs[-1]["content"] else msgs[-1]["content"]
    lines = [ln for ln in source.split("\n") if ln.strip()]
    key = f"{body.get('seed')}|{body.get('temperature')}|{body.get('frequency_penalty')}|{source}"
    h = hashlib.sha256(key.encode()).digest()
    out = []
    for i, ln in enumerate(lines):
        n = max(2, len(ln) * 2 // 3)
        start = (h[i % 32] + i) % len(ZH)
        out.append("".join(ZH[(start + 7 * k) % len(ZH)] for k in range(n)))
    # one request in four drops a line (the line-count check fails it), and every one of 5+ lines does (a split)
    if len(out) > 1 and (h[0] % 4 == 0 or len(out) >= 5):
        out.pop()
    return "\n".join(out), "stop"


def main() -> None:
    port, log = int(sys.argv[1]), sys.argv[2]
    delay = float(sys.argv[3]) if len(sys.argv) > 3 else 0.02

    class H(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def _send(self, payload: dict, stream: bool = False) -> None:
            data = as_events(payload) if stream else json.dumps(payload).encode()
            self.send_response(200)
            self.send_header("Content-Type", "text/event-stream" if stream else "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def do_GET(self) -> None:
            self._send({"object": "list", "data": [{"id": "fake", "object": "model", "max_model_len": 4096}]})

        def do_POST(self) -> None:
            n = int(self.headers.get("Content-Length") or 0)
            body = json.loads(self.rfile.read(n) or b"{}")
            if self.path.endswith("/tokenize"):
                text = body.get("prompt") or "".join(m["content"] for m in body.get("messages", []))
                return self._send({"count": len(text)})
            time.sleep(delay)
            text, finish = reply_for(body)
            with open(log, "a", encoding="utf-8") as f:
                f.write(json.dumps({"source": hashlib.sha256(body["messages"][-1]["content"].encode()).hexdigest()[:12],
                                    "seed": body.get("seed"), "temperature": body.get("temperature")}) + "\n")
            self._send({"id": "x", "object": "chat.completion", "created": 0, "model": "fake",
                        "choices": [{"index": 0, "finish_reason": finish,
                                     "message": {"role": "assistant", "content": text}}],
                        "usage": {"prompt_tokens": 10, "completion_tokens": len(text), "total_tokens": 10 + len(text)}},
                       stream=body.get("stream") is True)

        def log_message(self, *a: object) -> None:
            pass

    srv = ThreadingHTTPServer(("127.0.0.1", port), H)
    srv.daemon_threads = True
    print("ready", flush=True)
    srv.serve_forever()


if __name__ == "__main__":
    main()
