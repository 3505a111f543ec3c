"""lab.translate.bench: the pipeline and the bare openai loop send the same chunk requests, and the suite's ratios
are computed from what each measured (a real local server; no timing is asserted)."""

import json

from helpers import openai_fake, source_of

from lab.translate.bench import translate_suite
from lab.translate.prompts import PromptSpec

PREFACE = PromptSpec().preface


def test_the_pipeline_and_the_bare_loop_send_the_same_requests(monkeypatch):
    srv = openai_fake(lambda body: (200, "\n".join("的" * 4 for _ in source_of(body, PREFACE).split("\n")), "stop"))
    monkeypatch.setenv("LAB_PORT", str(srv.port))
    monkeypatch.delenv("LAB_HOST", raising=False)
    try:
        res = translate_suite("tiny", copies=1, chunk_tokens=32, concurrency=2, repeats=2)
    finally:
        srv.close()
    chats = [b for p, b in srv.requests if p.endswith("/chat/completions")]
    # per repeat: pipeline c1, pipeline c2, bare c2, each once over every chunk (attempts=1: nothing re-sent)
    assert len(chats) == 2 * 3 * res["chunks"] and res["chunks"] >= 3
    asked = [json.dumps(b["messages"], ensure_ascii=False, sort_keys=True) for b in chats]
    per_run = [sorted(asked[i:i + res["chunks"]]) for i in range(0, len(asked), res["chunks"])]
    assert all(run == per_run[0] for run in per_run)  # the same chunk requests, whichever client sends them
    med = res["tok_s_median"]
    assert set(res["tok_s_all"]) == set(med) == {"pipeline_c1", "pipeline_c2", "bare_c2"}
    assert all(len(v) == 2 and min(v) > 0 for v in res["tok_s_all"].values())
    assert res["scaling"] == round(med["pipeline_c2"] / med["pipeline_c1"], 2)
    assert res["pipeline_vs_bare"] == round(med["pipeline_c2"] / med["bare_c2"], 3)
