"""lab.crash: a bug is one line; the kept traceback never holds a key."""

import pytest

from lab import crash


def test_secret_options_are_masked():
    assert crash.masked_argv(["lab", "serve", "start", "--api-key", "s3cret", "--api-key=s3cret", "--port", "1"]) \
        == ["lab", "serve", "start", "--api-key", "***", "--api-key=***", "--port", "1"]


def test_the_report_masks_the_key_wherever_it_appears(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("LAB_LOGS", str(tmp_path))
    monkeypatch.setenv("LAB_API_KEY", "k-12345")
    try:
        raise ValueError("bad reply from http://h/v1?key=k-12345")
    except ValueError as e:
        assert crash.report(e, ["lab", "chat", "--api-key", "k-12345"]) == 1
    err = capsys.readouterr().err
    text = next(tmp_path.glob("crash-*.txt")).read_text()
    assert "k-12345" not in text and "--api-key ***" in text and "Traceback" in text
    assert err.startswith("error: internal error ValueError") and err.count("\n") == 1 and "k-12345" not in err


@pytest.mark.parametrize("value,want", [("1", True), ("yes", True), (" On ", True), ("", False), ("0", False),
                                        ("false", False), ("maybe", False)])
def test_lab_traceback_reads_yes_and_no_and_never_raises(monkeypatch, value, want):
    """LAB_TRACEBACK=0 used to let tracebacks through (any non-empty value did)."""
    monkeypatch.setenv("LAB_TRACEBACK", value)
    assert crash.wanted() is want


def test_a_long_list_of_names_is_cut_to_a_few_and_a_count():
    """A folder of 2,000 texts made `lab translate` print one 40 kB "wrote f0000.zh.txt, ..." line."""
    names = [f"f{i:04d}.zh.txt" for i in range(2000)]
    assert crash.listed(names) == "f0000.zh.txt, f0001.zh.txt, f0002.zh.txt, f0003.zh.txt, f0004.zh.txt and 1,995 more"
    assert crash.listed(names[:5]) == ", ".join(names[:5]) and crash.listed([]) == ""
