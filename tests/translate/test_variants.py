"""lab.translate.variants: notebook 04's one-call steps against a real local server that translates the Aozora
sample correctly as the adapter and wrongly as the base: what they write, score and compare."""

import shutil
from types import SimpleNamespace

import pytest
from helpers import AME_PAIRS, NOVEL, openai_fake, source_of

from lab.translate import PromptSpec, base_vs_adapter, scored
from lab.translate import translate as translate_step

SPEC = PromptSpec()


def reply(body):
    """vLLM serving a base model and its adapter: the adapter answers as the reference, the base one character."""
    src = source_of(body, SPEC.preface).split("\n")
    return 200, "\n".join(AME_PAIRS[x] if body["model"] == "ame-lora" else "的" for x in src), "stop"


@pytest.fixture
def folders(tmp_path):
    (tmp_path / "in").mkdir()
    (tmp_path / "ref").mkdir()
    shutil.copy(NOVEL / "ame.txt", tmp_path / "in" / "ame.txt")
    shutil.copy(NOVEL / "ame.zh.txt", tmp_path / "ref" / "ame.txt")
    (tmp_path / "in" / "extra.txt").write_text("\n".join(list(AME_PAIRS)[:2]) + "\n", encoding="utf-8")  # no reference
    srv = openai_fake(reply, model="base", adapters=("ame-lora",))
    yield tmp_path, SimpleNamespace(base_url=srv.url, api_key="secret-key"), srv
    srv.close()


def test_translate_sends_through_the_server_with_its_key_and_model(folders):
    tmp, server, srv = folders
    stats = translate_step(tmp / "out", server, tmp / "in" / "ame.txt", SPEC, model="ame-lora", chunk_tokens=48)
    assert stats["documents"] == 1 and stats["untranslated_lines"] == 0
    assert (tmp / "out" / "ame.zh.txt").read_text("utf-8") == (NOVEL / "ame.zh.txt").read_text("utf-8")
    chats = [b for p, b in srv.requests if p.endswith("/chat/completions")]
    assert chats and all(b["model"] == "ame-lora" for b in chats)


def test_scored_counts_every_document_and_scores_those_with_a_reference(folders, capsys):
    tmp, server, _ = folders
    stats, ev = scored(tmp / "good", server, tmp / "in", tmp / "ref", SPEC, [], model="ame-lora")
    assert stats["documents"] == 2 and [r["doc"] for r in ev["rows"]] == ["ame"]
    assert ev["total"]["chrf"] == 100.0 and ev["total"]["untranslated_lines"] == 0
    assert "1 of 2 document(s) have no reference" in capsys.readouterr().out


def test_base_vs_adapter_rows_per_document_and_total(folders):
    tmp, server, _ = folders
    rows = base_vs_adapter(tmp / "cmp", server, "ame-lora", tmp / "in", tmp / "ref", SPEC, [], attempts=1)
    assert [r["doc"] for r in rows] == ["ame", "ALL"]
    assert all(r["chrf_base"] < 50 < r["chrf_adapter"] == 100.0 for r in rows)  # the base: marked lines only
    assert (tmp / "cmp" / "lora_base" / "ame.zh.txt").exists() and (tmp / "cmp" / "lora_adapter").is_dir()
