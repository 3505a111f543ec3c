"""lab.translate.cli: `lab tokens` counts a long text in pieces cut before a line, and Aozora text as it is sent;
what `fix` and the run print of a hostile text cannot drive the terminal."""

from pathlib import Path

import pytest

from lab import LabError


def test_lab_tokens_counts_a_long_text_in_pieces_cut_before_a_line(monkeypatch):
    """A 104,857,600-character chapter tokenized at once took 24 GB and the OOM killer."""
    from lab.translate import chunking
    from lab.translate.cli import _count
    monkeypatch.setattr(chunking, "MAX_LINE_CHARS", 10)
    asked = []

    def tok(text, add_special_tokens):  # a character a token, so the pieces must add up exactly
        asked.append(text)
        return {"input_ids": list(text)}
    text = "一二三\n四五六七八\n九\n十一二三四五六七\n八"
    assert _count(tok, text, "t.txt") == len(text) and "".join(asked) == text
    assert len(asked) > 1 and all(len(a) <= 11 and (a.endswith("\n") or a is asked[-1]) for a in asked)
    with pytest.raises(LabError, match=r"t.txt: line 2 has 11 characters, over the 10 of one line"):
        _count(tok, "短い\n" + "長" * 11, "t.txt")


def test_lab_tokens_counts_aozora_text_as_translate_sends_it(tmp_path):
    """Ruby, ［＃…］ notes and the notation header were counted, though `lab translate` never sends them; a zip
    counts as its text."""
    import shutil

    from helpers import NOVEL, lab, legacy_zip

    from lab.translate import sources
    shutil.copy(NOVEL / "ame.txt", tmp_path / "ame.txt")
    (tmp_path / "plain.txt").write_text(sources.source_text(NOVEL / "ame.txt"), encoding="utf-8")
    # as Aozora ships it: a zip holding the Shift_JIS text under a CP932 name
    legacy_zip(tmp_path / "packed.zip", {"あめ.txt": (NOVEL / "ame.txt").read_text("utf-8").encode("cp932")})

    def rows(*args: str) -> dict[str, list[str]]:
        r = lab("tokens", str(tmp_path), *args)
        assert r.returncode == 0, r.stderr
        # file: [encoding, chars, tokens], header and TOTAL left out
        return {Path(ln.split()[0]).name: ln.split()[1:] for ln in r.stdout.splitlines()[1:-1]}
    detected, kept = rows(), rows("--no-aozora")
    assert detected["ame.txt"][0] == "utf-8+aozora" and detected["ame.txt"][1:] == detected["plain.txt"][1:]
    assert detected["packed.zip:あめ.txt"] == ["cp932+aozora", *detected["plain.txt"][1:]]
    assert kept["ame.txt"][0] == "utf-8" and int(kept["ame.txt"][2]) > int(detected["ame.txt"][2])


def test_a_source_line_or_name_with_terminal_escapes_is_shown_escaped(tmp_path):
    """`lab translate fix` printed the source line as it was: ESC ] 0 ; ... BEL retitled the terminal, ESC [ 2 J
    cleared it; a file name with ESC [ 31 m coloured every line after it."""
    from helpers import lab, openai_fake
    name = "a\x1b[31mred"
    src = tmp_path / "in" / f"{name}.txt"
    src.parent.mkdir()
    src.write_text("駅に着いた。\n\x1b]0;pwned\x07\x1b[2J雨だ。\n", encoding="utf-8")
    srv = openai_fake(lambda body: (200, "到了车站。\n下雨了。", "stop"))
    try:
        run = lab("translate", str(src.parent), "-o", str(tmp_path / "o"), "--base-url", srv.url)
    finally:
        srv.close()
    show = lab("translate", "fix", str(tmp_path / "o"), "--doc", name, "--line", "2")
    fix = lab("translate", "fix", str(tmp_path / "o"), "--doc", name, "--line", "1", "--text", "到站了。")
    for r in (run, show, fix):
        assert r.returncode == 0 and "\x1b" not in r.stdout + r.stderr and "\x07" not in r.stdout, r.stdout + r.stderr
    assert show.stdout.splitlines() == ["source: \\x1b]0;pwned\\x07\\x1b[2J雨だ。", "current: 下雨了。"]
    assert fix.stdout.startswith("a\\x1b[31mred line 1 locked")


def test_lab_tokens_refuses_a_bad_file_before_loading_a_tokenizer(tmp_path):
    """Its error line came after 8 s of transformers import; now every file is read first."""
    import subprocess
    import sys
    (tmp_path / "a.epub").write_bytes(b"hello")
    code = ("import sys; from lab import cli; rc = cli.main(['tokens', sys.argv[1]]); "
            "print(rc, 'transformers' in sys.modules)")
    r = subprocess.run([sys.executable, "-c", code, str(tmp_path / "a.epub")], capture_output=True, text=True,
                       timeout=60)
    assert r.stdout.split() == ["1", "False"], r.stdout + r.stderr
    assert r.stderr.strip() == f"error: {tmp_path / 'a.epub'}: not an EPUB (not a zip file: File is not a zip file)"
