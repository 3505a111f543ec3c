"""lab.paths: atomic writes, one-line read errors, JSONL with line numbers, folders from the environment."""

import threading
from pathlib import Path

import pytest

from lab import LabError, paths


def test_atomic_write_leaves_old_or_new_and_no_temp_files(tmp_path):
    f = tmp_path / "sub" / "r.json"
    paths.atomic_write(f, "old")

    def writer(i: int) -> None:
        for _ in range(50):
            paths.atomic_write(f, f"new {i}" * 100, durable=False)
    ts = [threading.Thread(target=writer, args=(i,)) for i in range(4)]
    for t in ts:
        t.start()
    seen = set()
    while any(t.is_alive() for t in ts):
        seen.add(f.read_text()[:6])
    for t in ts:
        t.join()
    assert seen <= {"old", "new 0n", "new 1n", "new 2n", "new 3n"} | {f"new {i}"[:6] for i in range(4)}
    assert [p.name for p in f.parent.iterdir()] == ["r.json"]  # every temp file was renamed away
    paths.atomic_write(f, b"\x00bytes")
    assert f.read_bytes() == b"\x00bytes"


def test_read_text_names_the_file_and_the_line(tmp_path):
    good = tmp_path / "g.txt"
    good.write_bytes("\ufeff一行\n".encode())
    assert paths.read_text(good) == "一行\n"  # BOM dropped
    bad = tmp_path / "b.txt"
    bad.write_bytes(b"ok\nok\n" + b"\xff\n")
    with pytest.raises(LabError, match=r"b\.txt:3: not UTF-8 text \(byte 0xff at offset 6\); save the glossary"):
        paths.read_text(bad, "glossary")
    with pytest.raises(LabError, match="glossary .*nope.txt does not exist"):
        paths.read_text(tmp_path / "nope.txt", "glossary")
    with pytest.raises(LabError, match="is a folder, not a file"):
        paths.read_text(tmp_path)


@pytest.mark.parametrize("enc", ["utf-16-le", "utf-16-be"])
def test_read_text_takes_utf16_with_its_byte_order_mark(tmp_path, enc):
    """Excel's "Unicode text" export of a glossary sheet is UTF-16 with a BOM and TABs: it was "not UTF-8"."""
    f = tmp_path / "g.tsv"
    f.write_bytes("\ufeff葵\t葵\r\n駅\t车站\r\n".encode(enc))
    assert paths.read_text(f, "glossary") == "葵\t葵\r\n駅\t车站\r\n"
    f.write_bytes("\ufeff駅".encode(enc) + b"\x00")  # an odd byte at the end: cut short
    with pytest.raises(LabError, match="g.tsv: starts with a UTF-16 byte-order mark but does not decode"):
        paths.read_text(f, "glossary")


def test_read_jsonl_skips_blank_lines_and_names_the_broken_one(tmp_path):
    f = tmp_path / "d.jsonl"
    f.write_text('{"a": 1}\n\n{"a": 2}\n{broken\n')
    it = paths.read_jsonl(f)
    assert next(it) == (1, {"a": 1}) and next(it) == (3, {"a": 2})
    with pytest.raises(LabError, match=r"d\.jsonl:4: malformed JSON"):
        next(it)


def test_json_nested_too_deeply_is_malformed_json_not_a_crash(tmp_path):
    f = tmp_path / "deep.jsonl"
    f.write_text('{"a": 1}\n' + "[" * 100_000 + "]" * 100_000 + "\n")
    with pytest.raises(LabError, match=r"deep.jsonl:2: malformed JSON \(nested too deeply to parse\)"):
        list(paths.read_jsonl(f))
    assert paths.parse_json('[[1], {"b": 2}]') == [[1], {"b": 2}]


def test_folders_follow_the_environment(tmp_path, monkeypatch):
    monkeypatch.setenv("LAB_RUNS", str(tmp_path / "r"))
    monkeypatch.setenv("LAB_CACHE", str(tmp_path / "c"))
    monkeypatch.delenv("LAB_RUN_DIR", raising=False)
    assert paths.runs() == tmp_path / "r" and paths.cache() == tmp_path / "c"
    assert paths.run_dir("x") == tmp_path / "r" / "adhoc" / "x"
    monkeypatch.setenv("LAB_RUN_DIR", str(tmp_path / "run1"))
    assert paths.run_dir("x") == tmp_path / "run1" / "x"
    assert len(paths.utc_stamp()) == 16 and paths.utc_stamp(iso=True).endswith("Z")


def test_kernel_env_makes_every_folder_absolute_against_the_working_folder(tmp_path, monkeypatch):
    """What `lab run` hands its kernels, which papermill starts in notebooks/: relative values would name
    folders there."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / "models" / "m").mkdir(parents=True)
    for k in paths.PATH_VARS:
        monkeypatch.delenv(k, raising=False)
    monkeypatch.setenv("LAB_LOGS", "mylogs")
    monkeypatch.setenv("LAB_CACHE", "~/c")
    monkeypatch.setenv("LAB_FIND_LINKS", "https://example.invalid/wheels")
    monkeypatch.setenv("LAB_MODEL", "models/m")
    env = paths.kernel_env()
    assert env["LAB_LOGS"] == str(tmp_path / "mylogs") and env["LAB_CACHE"] == str(Path("~/c").expanduser())
    assert "LAB_FIND_LINKS" not in env and "LAB_RUNS" not in env  # a URL, and a variable not set
    assert env["LAB_MODEL"] == str(tmp_path / "models" / "m") and env["LAB_RUN_CWD"] == str(tmp_path)
    assert env["LAB_ROOT"] == str(paths.root())
    monkeypatch.setenv("LAB_MODEL", "Qwen/Qwen3-4B")  # a hub id stays as it is
    assert "LAB_MODEL" not in paths.kernel_env()
    monkeypatch.setenv("LAB_RUN_CWD", str(tmp_path / "models"))
    monkeypatch.chdir(tmp_path / "models" / "m")
    assert paths.workdir() == tmp_path / "models"


def test_out_dir_is_made_before_work_and_a_file_is_refused(tmp_path):
    assert paths.out_dir(tmp_path / "a" / "b").is_dir()
    (tmp_path / "f").write_text("kept")
    with pytest.raises(LabError, match=r"^-o \S+f is a file; give a folder$"):
        paths.out_dir(tmp_path / "f", "-o")
    with pytest.raises(LabError, match="cannot create the folder"):
        paths.out_dir(tmp_path / "f" / "under")
    assert (tmp_path / "f").read_text() == "kept"


def test_atomic_write_on_a_full_disk_names_the_file_and_leaves_no_temp_file(tmp_path, monkeypatch):
    """ENOSPC at fsync (where a full disk shows): the old content stays, no .tmp is left, the error names the file."""
    import errno
    import os
    f = tmp_path / "r.json"
    paths.atomic_write(f, "old")

    def full(fd):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
    monkeypatch.setattr(os, "fsync", full)
    with pytest.raises(OSError) as e:
        paths.atomic_write(f, "new")
    assert e.value.errno == errno.ENOSPC and e.value.filename == str(f)
    assert f.read_text() == "old" and [p.name for p in tmp_path.iterdir()] == ["r.json"]


def test_a_long_name_is_shortened_once_deterministically_and_distinctly(tmp_path):
    assert paths.short_name("eki") == "eki" and paths.short_name("あ" * 66) == "あ" * 66  # 198 bytes: kept
    long_a, long_b = "あ" * 80 + "上", "あ" * 80 + "下"  # 243 bytes each, the same first 191
    a, b = paths.short_name(long_a), paths.short_name(long_b)
    assert a != b and a == paths.short_name(long_a) and a.startswith("あ" * 63) and "~" in a
    assert all(len(x.encode()) <= paths.MAX_NAME_BYTES for x in (a, b)) and "\ufffd" not in a  # no half kanji
    assert paths.short_name(a) == a  # a shortened name is a name that fits


def test_atomic_write_of_a_name_near_the_file_system_limit(tmp_path):
    """The temp file's name adds pid and thread id: it must not push a 250-byte name over 255."""
    f = tmp_path / ("あ" * 82 + ".txt")  # 250 bytes
    paths.atomic_write(f, "ok")
    assert f.read_text() == "ok" and [x.name for x in tmp_path.iterdir()] == [f.name]
    with pytest.raises(OSError) as e:  # over the limit: the error names the file, not a temp file
        paths.atomic_write(tmp_path / ("あ" * 90), "x")
    assert e.value.filename == str(tmp_path / ("あ" * 90)) and list(tmp_path.iterdir()) == [f]


def test_inside_keeps_links_within_the_folder_and_names_each_that_leaves_it(tmp_path, capsys):
    from lab import paths
    (tmp_path / "d").mkdir()
    (tmp_path / "secret").write_text("x")
    (tmp_path / "d" / "a.txt").write_text("a")
    (tmp_path / "d" / "same.txt").symlink_to("a.txt")
    (tmp_path / "d" / "out.txt").symlink_to(tmp_path / "secret")
    files = [tmp_path / "d" / n for n in ("a.txt", "out.txt", "same.txt")]
    assert paths.inside(tmp_path / "d", files) == [files[0], files[2]]
    assert capsys.readouterr().err == \
        f"warning: {files[1]}: a link to {tmp_path / 'secret'}, outside {tmp_path / 'd'}; skipped\n"


def test_one_line_escapes_control_characters_only():
    assert paths.one_line("error: 猫.txt: fine\tnot") == "error: 猫.txt: fine\\tnot"
    assert paths.one_line("a\nb\x1b[31mc\r") == "a\\nb\\x1b[31mc\\r"
    assert paths.one_line("吾輩は猫である。") == "吾輩は猫である。"


def test_shown_keeps_line_breaks_and_escapes_what_drives_a_terminal():
    text = "ok 42\n\x1b]0;pwned\x07\x1b[2J雨\n"
    assert paths.shown(text) == "ok 42\n\\x1b]0;pwned\\x07\\x1b[2J雨\n"
    assert paths.shown("吾輩\n猫") == "吾輩\n猫"


def test_warn_is_one_escaped_line_on_stderr_only(capsys):
    paths.warn("in/猫\n\x1b[2J.txt: empty file, skipped")
    out, err = capsys.readouterr()
    assert out == ""
    assert err == "warning: in/猫\\n\\x1b[2J.txt: empty file, skipped\n"


def test_read_json_names_the_file_the_place_and_the_fix(tmp_path):
    f = tmp_path / "r.json"
    f.write_text('{"a": [1, 2]}')
    assert paths.read_json(f) == {"a": [1, 2]}
    f.write_text('{"a": [1,\n 2')
    with pytest.raises(LabError, match=r"r\.json: not valid JSON \(.*line 2.*\); rerun it$"):
        paths.read_json(f, "results file", "rerun it")
    with pytest.raises(LabError, match="results file .* does not exist"):
        paths.read_json(tmp_path / "none.json", "results file")
