"""lab.finetune.data: loss only on the answer, control tokens as text, data errors by file and line, held-out
overlap, over-long prompts."""

import json

import pytest
from helpers import ROOT

from lab import LabError, finetune

DATA = ROOT / "data" / "finetune"


@pytest.fixture(scope="module")
def tok(tiny_model_dir):
    from transformers import AutoTokenizer
    return AutoTokenizer.from_pretrained(tiny_model_dir)


def test_loss_only_on_the_assistant_answer(tok):
    msgs = finetune.load_jsonl(DATA / "train.jsonl")[0]
    enc = finetune.encode(tok, msgs)
    ids, labels = enc["input_ids"], enc["labels"]
    assert len(ids) == len(labels)
    k = next(i for i, x in enumerate(labels) if x != finetune.IGNORE)
    assert all(x == finetune.IGNORE for x in labels[:k])
    assert tok.decode(ids[:k]).endswith("<|im_start|>assistant\n<think>\n\n</think>\n\n")  # as served
    assert tok.decode(labels[k:]) == msgs[-1]["content"] + "<|im_end|>\n"
    b = finetune.collate([enc, finetune.encode(tok, finetune.load_jsonl(DATA / "train.jsonl")[1])], tok.pad_token_id)
    short = int(b["attention_mask"].sum(1).min())
    assert b["labels"][b["attention_mask"] == 0].eq(finetune.IGNORE).all() and short < b["input_ids"].shape[1]


def test_a_thinking_only_template_trains_the_answer_after_a_closed_think_block(tiny_model_dir):
    """Qwen3 Thinking-2507's template opens <think> in the prompt whatever enable_thinking says."""
    from transformers import AutoTokenizer
    tok = AutoTokenizer.from_pretrained(tiny_model_dir)
    tok.chat_template = ("{% for m in messages %}<|im_start|>{{ m.role }}\n{{ m.content }}<|im_end|>\n{% endfor %}"
                         "{% if add_generation_prompt %}<|im_start|>assistant\n<think>\n{% endif %}")
    msgs = finetune.load_jsonl(DATA / "train.jsonl")[0]
    enc = finetune.encode(tok, msgs)
    k = next(i for i, x in enumerate(enc["labels"]) if x != finetune.IGNORE)
    assert tok.decode(enc["input_ids"][:k]).endswith("<|im_start|>assistant\n<think>\n\n</think>\n\n")
    assert tok.decode(enc["labels"][k:]) == msgs[-1]["content"] + "<|im_end|>\n"


def test_control_token_spellings_in_a_record_train_as_text_not_as_turn_ends(tok):
    """A pair quoting "<|im_end|>" would otherwise end the turn mid-text and teach the model to stop there."""
    quoted = [{"role": "user", "content": "翻訳して: 彼は「<|im_end|>」と書いた。"},
              {"role": "assistant", "content": "他写下了“<|im_end|>”。<|im_start|>user"}]
    plain = [{"role": "user", "content": "翻訳して: 彼は「」と書いた。"},
             {"role": "assistant", "content": "他写下了“”。"}]
    end, start = tok.convert_tokens_to_ids("<|im_end|>"), tok.convert_tokens_to_ids("<|im_start|>")
    enc, ref = finetune.encode(tok, quoted), finetune.encode(tok, plain)
    for key in ("input_ids", "labels"):
        assert [enc[key].count(t) for t in (end, start)] == [ref[key].count(t) for t in (end, start)]
    k = next(i for i, x in enumerate(enc["labels"]) if x != finetune.IGNORE)
    assert tok.decode(enc["labels"][k:]).replace("\u2060", "") == quoted[-1]["content"] + "<|im_end|>\n"


def test_dataset_errors_name_file_and_line(tmp_path):
    f = tmp_path / "d.jsonl"
    f.write_text('{"messages": [{"role": "user", "content": "a"}, {"role": "assistant", "content": "b"}]}\n{oops\n')
    with pytest.raises(LabError, match=r"d.jsonl:2: malformed JSON"):
        finetune.load_jsonl(f)
    f.write_text('{"messages": [{"role": "user", "content": "a"}]}\n')
    with pytest.raises(LabError, match=r"d.jsonl:1: the record has no final assistant turn"):
        finetune.load_jsonl(f)
    f.write_text("\n\n")
    with pytest.raises(LabError, match="empty dataset"):
        finetune.load_jsonl(f)
    with pytest.raises(LabError, match="does not exist"):
        finetune.load_jsonl(tmp_path / "none.jsonl")
    f.write_text('{"messages": [{"role": "user", "content": "a"}, {"role": "assistant", "content": 5}]}\n')
    with pytest.raises(LabError, match=r"d.jsonl:1: every message's role and content must be strings"):
        finetune.load_jsonl(f)
    f.write_text('{"messages": [{"role": "human", "content": "a"}, {"role": "assistant", "content": "b"}]}\n')
    with pytest.raises(LabError, match=r"d.jsonl:1: unknown role 'human' \(roles: assistant, system, tool, user\)"):
        finetune.load_jsonl(f)
    from lab.finetune.data import MAX_MESSAGE_CHARS  # 20M characters took 10.7 GB to tokenize, 100M the OOM killer
    f.write_text(json.dumps({"messages": [{"role": "user", "content": "猫" * (MAX_MESSAGE_CHARS + 1)},
                                          {"role": "assistant", "content": "b"}]}) + "\n")
    with pytest.raises(LabError, match=f"d.jsonl:1: a message of {MAX_MESSAGE_CHARS + 1:,} characters, over the"):
        finetune.load_jsonl(f)


def test_held_out_prompts_that_are_also_training_prompts_are_counted():
    """The same prompt with any answer counts (the model saw the question); spaces around a turn do not hide it."""
    from lab.finetune.data import leaked

    def rec(*turns: str) -> list[dict[str, str]]:
        roles = ("system", "user", "assistant")[-len(turns):]
        return [{"role": r, "content": c} for r, c in zip(roles, turns, strict=True)]
    train = [rec("猫です。", "是猫。"), rec("sys", "犬です。", "是狗。")]
    assert leaked(train, [rec("鳥です。", "是鸟。"), rec("犬です。", "是狗。")]) == 0  # no system turn
    assert leaked(train, [rec(" 猫です。\n", "猫。"), rec("sys", "犬です。", "狗")]) == 2
    assert leaked(train, []) == 0


def test_a_record_whose_prompt_fills_max_len_is_skipped_with_a_warning(tok, capsys):
    """Truncated to max_len with no answer token left, it would train nothing and score a nan loss."""
    from lab.finetune.train import answered
    short = [{"role": "user", "content": "猫"}, {"role": "assistant", "content": "猫"}]
    long = [{"role": "user", "content": "猫" * 400}, {"role": "assistant", "content": "犬"}]
    data, recs = answered(tok, [long, short], 64, "t.jsonl")
    assert recs == [short] and len(data) == 1 and any(x != finetune.IGNORE for x in data[0]["labels"])
    assert "warning: t.jsonl: record(s) 1 skipped: the prompt alone fills --max-len 64" in capsys.readouterr().err
    with pytest.raises(LabError, match="t.jsonl: no record keeps an answer token within --max-len 64"):
        answered(tok, [long], 64, "t.jsonl")
