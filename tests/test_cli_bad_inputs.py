"""Hostile or broken inputs: one `error:` line naming the file or option and a non-zero exit, never a traceback;
nothing is overwritten or written outside where it belongs."""

import base64
import json
import os
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from helpers import ROOT, FakeServer, lab, one_error, openai_fake

from lab import LabError

SJIS = "吾輩は猫である。".encode("shift_jis")


def _eval_dirs(tmp_path: Path) -> tuple[Path, Path]:
    hyp, ref = tmp_path / "hyp", tmp_path / "ref"
    hyp.mkdir()
    ref.mkdir()
    (hyp / "a.zh.txt").write_text("我是猫。\n", encoding="utf-8")
    (ref / "a.txt").write_text("我是猫。\n", encoding="utf-8")
    return hyp, ref


def test_eval_with_non_utf8_hypothesis_or_reference(tmp_path):
    hyp, ref = _eval_dirs(tmp_path)
    (hyp / "a.zh.txt").write_bytes(b"ok\n" + SJIS)
    one_error(lab("translate", "eval", str(hyp), str(ref)), "a.zh.txt:2", "not UTF-8")
    (hyp / "a.zh.txt").write_text("我是猫。\n", encoding="utf-8")
    (ref / "a.txt").write_bytes(SJIS)
    one_error(lab("translate", "eval", str(hyp), str(ref)), "a.txt:1", "not UTF-8")


def test_eval_source_folder_without_the_document(tmp_path):
    hyp, ref = _eval_dirs(tmp_path)
    (tmp_path / "src").mkdir()
    one_error(lab("translate", "eval", str(hyp), str(ref), "--source", str(tmp_path / "src")), "--source", "a.txt")


def test_eval_of_one_file_against_one_and_a_mismatched_pair(tmp_path):
    from lab.translate.eval import evaluate
    hyp, ref = _eval_dirs(tmp_path)
    (ref / "b.txt").write_text("你好。\n", encoding="utf-8")
    (hyp / "b.zh.txt").write_text("再见。\n", encoding="utf-8")
    one = evaluate(hyp / "a.zh.txt", ref / "a.txt")
    assert [r["doc"] for r in one["rows"]] == ["a"] and one["total"]["chrf"] == 100.0
    assert evaluate(hyp, ref / "b.txt")["total"]["chrf"] < 100.0  # a folder finds b.zh.txt by the name
    assert len(evaluate(hyp, ref)["rows"]) == 2
    one_error(lab("translate", "eval", str(hyp / "a.zh.txt"), str(ref)), "a.zh.txt is a file", "two files")
    one_error(lab("translate", "eval", str(hyp), str(tmp_path / "nope")), "nope does not exist")
    # a device reads forever: refused before any reading
    one_error(lab("translate", "eval", str(hyp / "a.zh.txt"), "/dev/zero"), "/dev/zero is neither a file nor a folder")


def test_glossary_that_is_not_utf8(tmp_path):
    (tmp_path / "g.tsv").write_bytes("猫\t猫\n".encode() + "犬\t狗\n".encode("gbk"))
    (tmp_path / "in.txt").write_text("猫です。\n", encoding="utf-8")
    one_error(lab("translate", str(tmp_path / "in.txt"), "-o", str(tmp_path / "o"), "--glossary",
                   str(tmp_path / "g.tsv"), "--base-url", "http://127.0.0.1:9/v1"), "g.tsv:2", "not UTF-8")


def test_journal_build_skips_a_corrupt_run_json_with_a_warning(tmp_path):
    runs = tmp_path / "runs"
    for name, text in (("20260101T000000Z-tiny", "{not json"), ("20260102T000000Z-tiny", None)):
        (runs / name).mkdir(parents=True)
        meta = {"id": name, "profile": "tiny", "model": "m", "started": "s", "ended": "e", "notebooks": []}
        (runs / name / "run.json").write_text(text or json.dumps(meta))
    r = lab("journal", "build", env={"LAB_RUNS": str(runs), "LAB_JOURNAL": str(tmp_path / "j")})
    assert r.returncode == 0, r.stderr
    assert "warning: journal: skipped" in r.stderr and "not valid JSON" in r.stderr
    assert "20260101T000000Z-tiny" in r.stderr
    assert (tmp_path / "j" / "runs" / "20260102T000000Z-tiny" / "README.md").exists()
    hand = tmp_path / "j" / "runs" / "20260103T000000Z-tiny" / "entry.json"  # an entry edited by hand
    hand.parent.mkdir(parents=True)
    hand.write_text(json.dumps({"id": "20260103T000000Z-tiny", "notebooks": [{"name": "01"}]}))
    r = lab("journal", "build", env={"LAB_RUNS": str(runs), "LAB_JOURNAL": str(tmp_path / "j")})
    assert r.returncode == 0 and "Traceback" not in r.stderr, r.stderr
    assert "skipped" in r.stderr and "20260103T000000Z-tiny" in r.stderr
    assert "20260102T000000Z-tiny" in (tmp_path / "j" / "README.md").read_text()


def _gguf_without_tokenizer(path: Path) -> Path:
    import numpy as np
    from gguf import GGUFWriter
    w = GGUFWriter(str(path), "llama")
    w.add_context_length(64)
    w.add_embedding_length(8)
    w.add_block_count(1)
    w.add_head_count(2)
    w.add_tensor("token_embd.weight", np.zeros((4, 8), dtype=np.float32))
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    return path


def test_import_gguf_without_a_tokenizer(tmp_path):
    f = _gguf_without_tokenizer(tmp_path / "notok.gguf")
    one_error(lab("model", "import-gguf", str(f), env={"LAB_CACHE": str(tmp_path / "cache")}), "notok.gguf",
               "tokenizer")


def test_import_gguf_name_cannot_leave_the_model_cache(tmp_path):
    from lab import gguf
    assert gguf.clean_name("/some/abs/path") == "some-abs-path"
    assert gguf.clean_name("../../etc") == "etc"
    with pytest.raises(Exception, match="--name"):
        gguf.clean_name("///")


def test_import_gguf_of_a_folder_or_a_device(tmp_path):
    one_error(lab("model", "import-gguf", str(tmp_path)), "is not a GGUF file (a folder, device or pipe)")
    one_error(lab("model", "import-gguf", "/dev/zero"), "/dev/zero is not a GGUF file")
    one_error(lab("model", "import-gguf", str(tmp_path / "nope.gguf")), "nope.gguf does not exist")


@pytest.mark.parametrize("case", ["broken_json", "no_choices", "not_sse", "deep_json", "sse_number"])
def test_chat_and_translate_against_a_server_that_answers_nonsense(case, tmp_path):
    def handler(path, body):
        if path.endswith("/models"):
            return 200, {"object": "list", "data": [{"id": "m", "object": "model"}]}
        if path.endswith("/tokenize"):
            return 200, {"count": 9}
        if case == "broken_json":
            return 200, b"{\"id\": \"x\", \"choices\": [{"
        if case == "deep_json":  # json's C parser: RecursionError
            return 200, b'{"id": "x", "choices": ' + b"[" * 100_000 + b"]" * 100_000 + b"}"
        if case == "sse_number":  # an event that is JSON but no chunk: the SDK hands over the int
            return 200, b"data: 5\n\ndata: [DONE]\n\n"
        return 200, {"id": "x", "object": "chat.completion", "created": 0, "model": "m", "choices": []}  # JSON, no SSE
    srv = FakeServer(handler)
    (tmp_path / "in.txt").write_text("駅に着いた。\n", encoding="utf-8")
    try:
        args = ["chat", "hello", "--base-url", srv.url] + ([] if case in ("not_sse", "sse_number") else ["--no-stream"])
        one_error(lab(*args, timeout=60), srv.url, "not OpenAI-compatible")
        # the translation pipeline's own (async) client: the same line, and what was kept (an internal error before)
        if case != "not_sse":
            one_error(lab("translate", str(tmp_path / "in.txt"), "-o", str(tmp_path / "o"), "--base-url", srv.url,
                           timeout=60), srv.url, "not OpenAI-compatible",
                       "finished pieces (chunks or their halves) are kept")
    finally:
        srv.close()


def test_plan_into_a_closed_pipe():
    """`lab run --plan | head -1`: the reader is gone before lab writes (closed here at once, so every write fails)."""
    r, w = os.pipe()
    os.close(r)
    p = subprocess.Popen([sys.executable, "-m", "lab.cli", "run", "--plan", "--profile", "qwen3-32b-awq"], stdout=w,
                         stderr=subprocess.PIPE, text=True, cwd=ROOT)
    os.close(w)
    _, err = p.communicate(timeout=120)
    assert p.returncode != 0 and "Traceback" not in err and "BrokenPipe" not in err, err
    assert err.strip() == "error: output closed early (broken pipe)"


def test_finetune_errors_are_printed_once(tmp_path):
    (tmp_path / "train.jsonl").write_text("{broken\n")
    (tmp_path / "heldout.jsonl").write_text("{broken\n")
    r = lab("finetune", "--data", str(tmp_path), "--out", str(tmp_path / "o"), "--steps", "1", timeout=300)
    err = one_error(r, "train.jsonl")
    assert (r.stdout + r.stderr).count(err.removeprefix("error: ")) == 1
    (tmp_path / "file.jsonl").write_text("{}\n")
    for bad, why in (("file.jsonl", "not a folder"), ("nope", "does not exist")):
        one_error(lab("finetune", "--data", str(tmp_path / bad), "--steps", "1"), f"--data {tmp_path / bad}", why)


def test_lab_profiles_naming_a_missing_file(tmp_path):
    one_error(lab("profiles", env={"LAB_PROFILES": str(tmp_path / "nope.toml")}), "LAB_PROFILES", "nope.toml")


def test_lab_toml_in_the_working_folder_is_read(tmp_path):
    (tmp_path / "lab.toml").write_text('[mine]\nmodel = "tiny"\nserved_name = "my-tiny"\n')
    r = subprocess.run([sys.executable, "-m", "lab.cli", "profiles"], capture_output=True, text=True, cwd=tmp_path,
                       timeout=60, env={**os.environ, "LAB_ROOT": str(ROOT)})
    assert r.returncode == 0 and "mine" in r.stdout and not r.stderr, r.stdout + r.stderr
    # a broken profile is listed and said at once, not first when a run uses it
    (tmp_path / "lab.toml").write_text('[mine]\nmodel = "tiny"\nserved_name = "my-tiny"\n[bad]\nmodel = 5\n')
    r = subprocess.run([sys.executable, "-m", "lab.cli", "profiles"], capture_output=True, text=True, cwd=tmp_path,
                       timeout=60, env={**os.environ, "LAB_ROOT": str(ROOT)})
    assert r.returncode == 0 and "mine" in r.stdout and "bad" in r.stdout
    assert r.stderr == "warning: profile 'bad': missing required key 'served_name'\n"


def test_inputs_whose_outputs_share_a_name_are_refused_before_anything(tmp_path):
    (tmp_path / "in6" / "sub").mkdir(parents=True)
    (tmp_path / "in6" / "sub" / "eki.txt").write_text("駅に着いた。\n", encoding="utf-8")
    (tmp_path / "in6" / "sub__eki.txt").write_text("電車はまだ来ない。\n", encoding="utf-8")
    fake = openai_fake(lambda body: (200, "译文。", "stop"))
    try:
        r = lab("translate", str(tmp_path / "in6"), "-o", str(tmp_path / "tr6"), "--base-url", fake.url)
    finally:
        fake.close()
    one_error(r, "sub__eki.zh.txt", "sub/eki.txt", "sub__eki.txt")
    assert not (tmp_path / "tr6").exists() or not any((tmp_path / "tr6").iterdir())
    assert not [p for p, _ in fake.requests if "chat" in p]


def test_epub_chapters_and_a_text_file_sharing_an_output_name(tmp_path):
    from lab import LabError
    from lab.translate.sources import Source, unique_outputs
    book, txt = tmp_path / "eki.epub", tmp_path / "eki__000_c1.txt"
    docs = [Source(book, "eki__000_c1", "x", "epub", epub_href="c1.xhtml"), Source(txt, "eki__000_c1", "y", "utf-8")]
    with pytest.raises(LabError, match="eki__000_c1.zh.txt"):
        unique_outputs(docs)
    with pytest.raises(LabError, match="x.zh.epub"):
        unique_outputs([Source(tmp_path / "a" / "x.epub", "a__x__c1", "x", "epub", epub_href="c1"),
                        Source(tmp_path / "b" / "x.epub", "b__x__c1", "x", "epub", epub_href="c1")])
    unique_outputs([Source(book, "eki__c1", "x", "epub", epub_href="c1"),  # chapters of one book: fine
                    Source(book, "eki__c2", "x", "epub", epub_href="c2")])


def test_a_server_that_accepts_but_never_answers_fails_within_seconds(tmp_path):
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(16)  # accepts (the kernel completes the handshake) and never reads or answers
    port = sock.getsockname()[1]
    (tmp_path / "in.txt").write_text("駅に着いた。\n", encoding="utf-8")
    t0 = time.time()
    try:
        r = lab("translate", str(tmp_path / "in.txt"), "-o", str(tmp_path / "o"), "--base-url",
                f"http://127.0.0.1:{port}/v1", timeout=120)
    finally:
        sock.close()
    assert time.time() - t0 < 45
    one_error(r, "did not answer /v1/models within 10 s")


def test_progress_lines_say_what_is_awaited(tmp_path):
    from lab.translate import PromptSpec, Settings, Translator
    release = threading.Event()

    def reply(body):
        release.wait(4)
        return 200, "译" * 6, "stop"
    fake = openai_fake(reply)
    (tmp_path / "in.txt").write_text("駅に着いた。\n", encoding="utf-8")
    import contextlib
    import io
    buf = io.StringIO()
    try:
        with contextlib.redirect_stdout(buf):
            Translator(Settings(out=tmp_path / "o", endpoints=[fake.url], spec=PromptSpec(preface="翻译："),
                                progress_every_s=1, timeout=30)).run(tmp_path / "in.txt")
    finally:
        release.set()
        fake.close()
    said = buf.getvalue()
    assert "waiting on 1 request(s) (longest " in said and "; a try fails after 30s without a token, 3 tries at most)" \
        in said
    assert ", 0 lines untranslated, " in said  # a chunk in flight is not (yet) a failure


def test_a_server_that_lists_its_models_but_never_tokenizes_fails_within_its_bound(tmp_path):
    """/tokenize had the request timeout and the client's retries: 6 silent minutes before the error."""
    def handler(path, body):
        if path.endswith("/models"):
            return 200, {"object": "list", "data": [{"id": "fake", "object": "model", "max_model_len": 4096}]}
        return 200, None  # /tokenize and chat: never answered
    fake = FakeServer(handler)
    (tmp_path / "in.txt").write_text("駅に着いた。\n", encoding="utf-8")
    t0 = time.time()
    try:
        r = lab("translate", str(tmp_path / "in.txt"), "-o", str(tmp_path / "o"), "--base-url", fake.url,
                "--timeout", "2", timeout=120)
    finally:
        fake.close()
    assert time.time() - t0 < 30
    one_error(r, "did not answer /tokenize within 2 s (twice)")


def test_bench_run_on_a_port_another_program_holds_fails_before_measuring_and_lists_are_checked(tmp_path):
    import socket
    with socket.socket() as held:
        held.bind(("127.0.0.1", 0))
        held.listen()
        r = lab("bench", "run", "--profile", "tiny", "--out", str(tmp_path / "b"),
                env={"LAB_PORT": str(held.getsockname()[1])}, timeout=300)
    one_error(r, "is in use by another program")
    # nothing was measured first: no engine's progress line, no results file
    assert "tok/s" not in r.stdout and not (tmp_path / "b").exists(), r.stdout
    for bad in ("1,,2", "1,", ",", "0,2", "a"):
        r = lab("bench", "run", "--concurrency", bad)
        assert r.returncode == 2 and "--concurrency" in r.stderr and "Traceback" not in r.stderr, (bad, r.stderr)
    r = lab("bench", "run", "--engines", "hf,foo")
    assert r.returncode == 2 and "unknown 'foo'" in r.stderr
    r = lab("bench", "rate", "--rates", "0")
    assert r.returncode == 2 and "--rates" in r.stderr


def test_an_empty_chat_message_is_refused_before_any_request():
    """`lab chat ""` sent an empty user turn and printed the model's ramble to nothing, exit 0."""
    for empty in ("", " \n"):
        r = lab("chat", empty, "--base-url", "http://127.0.0.1:9/v1")
        assert r.returncode == 2 and "argument prompt: expected a message, got an empty one" in r.stderr
    # an empty --model used to mean the server's first model, silently
    r = lab("chat", "hi", "--model", "", "--base-url", "http://127.0.0.1:9/v1")
    assert r.returncode == 2 and "argument --model: expected a served model name" in r.stderr


def test_c2rust_check_of_a_binary_file_or_a_folder(tmp_path):
    c_dir = ROOT / "data" / "c_to_rust" / "str_to_int"
    (tmp_path / "x.rs").write_bytes(b"fn main() {}\n\xa4\x00\xff")
    one_error(lab("c2rust", "check", str(c_dir / "prog.c"), str(c_dir / "tests.json"), str(tmp_path / "x.rs")),
               "x.rs:2", "not UTF-8")
    one_error(lab("c2rust", "check", str(c_dir), str(c_dir / "tests.json"), str(tmp_path / "x.rs")),
               "str_to_int is a folder")
    one_error(lab("c2rust", "check", str(c_dir / "prog.c"), str(c_dir), str(c_dir / "reference.rs")),
               "test file", "str_to_int is a folder")
    one_error(lab("c2rust", "batch", str(tmp_path / "nowhere"), "--base-url", "http://127.0.0.1:9/v1"),
               "nowhere does not exist")
    one_error(lab("c2rust", "batch", str(c_dir / "prog.c"), "--base-url", "http://127.0.0.1:9/v1"),
               "prog.c is not a folder of programs")


def test_a_bug_is_one_line_and_its_traceback_goes_to_the_logs(tmp_path, monkeypatch, capsys):
    from lab import cli
    from lab.c2rust import cli as c2rust_cli

    def broken(a):
        raise TypeError("unsupported operand")
    monkeypatch.setattr(c2rust_cli, "_check", broken)
    monkeypatch.setenv("LAB_LOGS", str(tmp_path))
    monkeypatch.delenv("LAB_TRACEBACK", raising=False)
    assert cli.main(["c2rust", "check", "a.c", "t.json", "a.rs"]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: internal error TypeError: unsupported operand"), err
    crash = next(tmp_path.glob("crash-*.txt"))
    assert "Traceback" in crash.read_text() and "in broken" in crash.read_text() and str(crash) in err[0]
    monkeypatch.setenv("LAB_TRACEBACK", "1")
    with pytest.raises(TypeError):
        cli.main(["c2rust", "check", "a.c", "t.json", "a.rs"])


def test_a_full_disk_is_one_line_that_says_what_to_do(monkeypatch, capsys):
    import errno

    from lab import cli
    from lab.c2rust import cli as c2rust_cli

    def full(a):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), "out/big.zh.txt")
    monkeypatch.setattr(c2rust_cli, "_check", full)
    assert cli.main(["c2rust", "check", "a.c", "t.json", "a.rs"]) == 1
    assert capsys.readouterr().err.splitlines() == [
        "error: out/big.zh.txt: No space left on device (disk full): free some space and rerun; finished work is "
        "kept on disk"]


def test_a_malformed_parameters_file_is_one_line_with_its_line(tmp_path):
    (tmp_path / "p.yaml").write_text("concurrency: 2\nprompt: [1,\n")
    one_error(lab("run", "01", "-f", str(tmp_path / "p.yaml")), "p.yaml:3: invalid YAML")


def test_hand_edited_or_binary_files_the_translator_reads(tmp_path):
    (tmp_path / "in.txt").write_text("猫です。\n", encoding="utf-8")
    (tmp_path / "pre.txt").write_bytes(b"translate\n" + SJIS)
    one_error(lab("translate", str(tmp_path / "in.txt"), "-o", str(tmp_path / "o"), "--preface",
                   str(tmp_path / "pre.txt"), "--base-url", "http://127.0.0.1:9/v1"), "pre.txt:2", "not UTF-8")
    (tmp_path / "p.yaml").write_bytes(b"prompt: " + SJIS + b"\n")
    one_error(lab("run", "01", "-f", str(tmp_path / "p.yaml")), "p.yaml:1", "not UTF-8")
    # valid UTF-8 with a NUL (a binary file given by mistake), and an empty preface: the model got no task
    (tmp_path / "pre.txt").write_bytes(b"translate\nGGUF\x03\x00\x00\x00")
    one_error(lab("translate", str(tmp_path / "in.txt"), "-o", str(tmp_path / "o"), "--preface",
                   str(tmp_path / "pre.txt"), "--base-url", "http://127.0.0.1:9/v1"), "pre.txt:2: a NUL byte")
    (tmp_path / "pre.txt").write_text(" \n\n")
    one_error(lab("translate", str(tmp_path / "in.txt"), "-o", str(tmp_path / "o"), "--preface",
                   str(tmp_path / "pre.txt"), "--base-url", "http://127.0.0.1:9/v1"), "pre.txt is empty")
    from lab import paths
    (tmp_path / "t.json").write_bytes(b'{"cases": []}\x00')
    with pytest.raises(LabError, match=r"t.json:1: a NUL byte: looks binary, not a test file in UTF-8 text"):
        paths.read_text(tmp_path / "t.json", "test file")
    man = tmp_path / "out" / ".lab-cache" / "a" / "manifest.json"
    man.parent.mkdir(parents=True)
    man.write_text('{"name": "a", "chunks": [{"units": 3}]}')
    one_error(lab("translate", "rebuild", str(tmp_path / "out")), "manifest.json: not a manifest lab wrote")
    from lab.translate.document import _fixes_file
    fixes = tmp_path / "fixes.json"
    for bad in ('["line 3"]', '{"3": "我是猫"}', '{"x": {"text": "我"}}', '{"3": {"text": 5}}'):
        fixes.write_text(bad)
        with pytest.raises(LabError, match=r"fixes.json: expected"):
            _fixes_file(fixes)
    fixes.write_text('{"3": {"source": "猫です。", "text": "是猫。"}}')
    assert _fixes_file(fixes)["3"]["text"] == "是猫。"


def test_a_device_a_pipe_or_an_oversized_file_is_refused_before_it_is_read(tmp_path, monkeypatch):
    c_dir = ROOT / "data" / "c_to_rust" / "str_to_int"
    task = tmp_path / "test_task.json"
    task.write_text('[{"command": "sactor run-tests --type bin /dev/zero %t 0 --feed-as-args", "test_id": 0}]')
    one_error(lab("c2rust", "check", str(c_dir / "prog.c"), str(task), str(c_dir / "reference.rs"), timeout=60),
               "/dev/zero is outside the program folder")
    os.mkfifo(tmp_path / "fifo.txt")  # reading a FIFO nobody writes would block forever
    task.write_text('[{"command": "sactor run-tests --type bin ./fifo.txt %t 0 --feed-as-args", "test_id": 0}]')
    one_error(lab("c2rust", "check", str(c_dir / "prog.c"), str(task), str(c_dir / "reference.rs"), timeout=60),
               "fifo.txt is not a regular file")
    one_error(lab("tokens", str(tmp_path / "fifo.txt"), timeout=60), "fifo.txt is neither a file nor a folder")
    one_error(lab("c2rust", "check", str(c_dir / "prog.c"), str(tmp_path / "fifo.txt"), str(c_dir / "reference.rs"),
                   timeout=60), "fifo.txt is not a regular file")
    from lab import paths
    monkeypatch.setattr(paths, "MAX_INPUT_BYTES", 1000)
    (tmp_path / "big.txt").write_text("猫" * 1000)
    with pytest.raises(LabError, match=r"big.txt is 3,000 bytes, over the 1,000-byte limit"):
        paths.read_text(tmp_path / "big.txt", "input")


def test_no_output_replaces_an_input_or_a_file_no_run_wrote(tmp_path):
    from lab.translate.epub import book
    folder = tmp_path / "in7"
    folder.mkdir()
    (folder / "novel.txt").write_text("駅に着いた。\n", encoding="utf-8")
    book([("第一章", "電車はまだ来ない。")], folder / "novel.epub", "小説", "ja")
    original = (folder / "novel.epub").read_bytes()
    fake = openai_fake(lambda body: (200, "译文。", "stop"))
    try:  # --epub makes novel.epub from the one text document: the source EPUB beside it
        r = lab("translate", str(folder), "-o", str(folder), "--epub", "--base-url", fake.url)
        one_error(r, "novel.epub is an input", "nothing was written")
        assert (folder / "novel.epub").read_bytes() == original and not (folder / ".lab-cache").exists()
        other = tmp_path / "notes"
        other.mkdir()
        (other / "run.json").write_text('{"mine": true}')
        one_error(lab("translate", str(folder / "novel.txt"), "-o", str(other), "--base-url", fake.url),
                   "holds run.json from something other than a translation run")
        assert (other / "run.json").read_text() == '{"mine": true}'
        assert not [p for p, _ in fake.requests if "chat" in p]
        r = lab("translate", str(folder), "-o", str(folder), "--base-url", fake.url)  # no --epub: fine
        assert r.returncode == 0 and (folder / "novel.zh.txt").exists() and (folder / "novel.zh.epub").exists()
        assert (folder / "novel.epub").read_bytes() == original
        r = lab("translate", str(folder), "-o", str(folder), "--base-url", fake.url)  # a rerun into it: fine
        assert r.returncode == 0, r.stderr
    finally:
        fake.close()


def test_a_link_out_of_the_input_folder_is_never_read_or_sent(tmp_path):
    secret = tmp_path / "home" / "secret.txt"
    secret.parent.mkdir()
    secret.write_text("秘密の鍵です。\n", encoding="utf-8")
    folder = tmp_path / "book"
    (folder / "sub").mkdir(parents=True)
    (folder / "a.txt").write_text("駅に着いた。\n", encoding="utf-8")
    (folder / "leak.txt").symlink_to(secret)  # a packed folder can hold one
    (folder / "sub" / "up").symlink_to(secret.parent, target_is_directory=True)
    (folder / "same.txt").symlink_to("a.txt")  # a link that stays inside is followed
    fake = openai_fake(lambda body: (200, "译文。", "stop"))
    try:
        r = lab("translate", str(folder), "-o", str(tmp_path / "out"), "--base-url", fake.url)
        assert r.returncode == 0, r.stderr
        assert f"warning: {folder / 'leak.txt'}: a link to {secret}, outside {folder}; skipped" in r.stderr
        sent = "".join(json.dumps(b, ensure_ascii=False) for p, b in fake.requests if "chat" in p)
        assert "駅に着いた" in sent and "秘密" not in sent
        assert sorted(p.name for p in (tmp_path / "out").glob("*.zh.txt")) == ["a.zh.txt", "same.zh.txt"]
        (folder / "a.txt").unlink()
        (folder / "same.txt").unlink()
        one_error(lab("translate", str(folder), "-o", str(tmp_path / "out2"), "--base-url", fake.url),
                   "no .txt, .epub or .zip files")
    finally:
        fake.close()


def test_journal_names_come_from_the_run_folder_never_from_the_files(tmp_path):
    """A copied runs/ folder whose run.json says "id": "../../x", or whose records name paths, writes nothing
    outside journal/ (it wrote an entry two folders up)."""
    from lab import journal
    run = tmp_path / "runs" / "20260104T000000Z-tiny"
    run.mkdir(parents=True)
    (run / "run.json").write_text(json.dumps({"id": "../../escaped", "profile": "tiny", "model": "m", "started": "s",
                                              "ended": "e", "notebooks": [{"name": "../nb", "status": "ok"}]}))
    png = base64.b64encode(b"\x89PNG fake").decode()
    out = {"output_type": "display_data", "metadata": {},
           "data": {journal.MIME: {"key": "../../../k", "figure": True}, "image/png": png}}
    (run / "nb.ipynb").write_text(json.dumps({"cells": [{"cell_type": "code", "outputs": [out]}]}))
    entry = journal.write_entry(run, tmp_path / "j")
    assert entry == tmp_path / "j" / "runs" / "20260104T000000Z-tiny"
    assert (entry / "figures" / "nb-k.png").read_bytes() == b"\x89PNG fake"
    assert "](figures/nb-k.png)" in (entry / "README.md").read_text()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["j", "runs"]
    assert [p.name for p in (tmp_path / "j" / "runs").iterdir()] == ["20260104T000000Z-tiny"]
    assert journal.safe_name("../../etc/x") == "etc_x" and journal.safe_name("01_serving") == "01_serving"


def test_a_file_name_with_a_newline_or_an_escape_stays_on_the_one_error_line(tmp_path):
    bad = tmp_path / "a\nb\x1b[2J.txt"
    r = lab("translate", "eval", str(bad), str(tmp_path / "ref.txt"))
    assert r.returncode == 1 and r.stderr.count("\n") == 1 and "\x1b" not in r.stderr, r.stderr
    (tmp_path / "ref.txt").write_text("猫\n", encoding="utf-8")
    assert one_error(lab("translate", "eval", str(bad), str(tmp_path / "ref.txt")),
                      "a\\nb\\x1b[2J.txt does not exist")


@pytest.mark.parametrize("models", [b'{"data": 5}', b'{"data": [{"object": "model"}]}', b"[1]",
                                    b'{"data": ' + b"[" * 100_000 + b"]" * 100_000 + b"}"])
def test_a_model_list_of_another_shape_is_one_line_for_chat_and_not_running_for_status(models):
    """`"data": 5` crashed with TypeError, entries without an id became model None, deep nesting RecursionError."""
    srv = FakeServer(lambda path, body: (200, models) if path.endswith("/models") else (500, {"error": "x"}))
    try:
        one_error(lab("chat", "hi", "--base-url", srv.url, timeout=60), srv.url, "not OpenAI-compatible")
        r = lab("serve", "status", "--port", str(srv.port), timeout=60)
        assert r.returncode == 3 and "not running" in r.stdout and "Traceback" not in r.stderr, r.stdout + r.stderr
    finally:
        srv.close()


def test_model_entries_keep_a_usable_context_length_only():
    from lab.client import model_entries
    got = model_entries({"data": [{"id": "a", "max_model_len": 2048}, {"id": "b", "max_model_len": "huge"},
                                  {"id": "c", "max_model_len": -5, "parent": "a"}, {"id": "d", "max_model_len": True}]})
    assert [(m["id"], m["max_model_len"]) for m in got] == [("a", 2048), ("b", None), ("c", None), ("d", None)]
    assert got[2]["parent"] == "a"
    with pytest.raises(ValueError, match="no list of models with ids"):
        model_entries({"data": [{"id": ""}]})
