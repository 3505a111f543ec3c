"""lab.options: defaults read from their one definition, parser-level checks (exit 2), comma lists."""

import argparse
import dataclasses

import pytest

from lab import options


@dataclasses.dataclass
class S:
    need: int
    n: int = 3
    names: list[str] = dataclasses.field(default_factory=lambda: ["a", "b"])
    on: bool = True


def f(x: float = 0.5, y: int = 0) -> None:
    """A function whose defaults an option reads."""


def test_defaults_come_from_the_dataclass_or_the_signature_and_the_help_states_them():
    assert options.default_of(S, "n") == 3 and options.default_of(S, "names") == ["a", "b"]
    assert options.default_of(f, "x") == 0.5
    with pytest.raises(KeyError):
        options.default_of(S, "need")
    p = argparse.ArgumentParser()
    options.add(p, "--n", S, help="count")
    options.add(p, "--names", S, help="who")
    options.add(p, "--on", S, help="switch")
    options.add(p, "--x", f, help="share")
    text = p.format_help()
    for want in ("count (default: 3)", "who (default: a,b)", "switch (default: True)", "share (default: 0.5)"):
        assert want in " ".join(text.split()), want
    a = p.parse_args(["--no-on", "--n", "7"])
    assert a.on is False and a.n == 7 and a.x == 0.5


@pytest.mark.parametrize("parse,text,msg", [(options.POSITIVE_INT, "0", "must be >= 1, got 0"),
                                            (options.POSITIVE_INT, "x", "expected an integer, got 'x'"),
                                            (options.POSITIVE_FLOAT, "0", "must be > 0, got 0"),
                                            (options.checked(float, 0, 2), "3", "must be <= 2, got 3"),
                                            (options.comma_ints, "1,,2", "no empty item, got '1,,2'"),
                                            (options.comma_ints, "0,2", "integers from 1 to 1,000,000, got '0,2'"),
                                            (options.comma_ints, "1,2000000", "integers from 1 to 1,000,000"),
                                            (options.POSITIVE_INT, "99999999999999999999",
                                             "must be <= 1,000,000, got 99999999999999999999"),
                                            (options.NON_NEGATIVE_INT, "1000001", "must be <= 1,000,000"),
                                            (options.SECONDS, "1e300", "must be <= 604,800, got 1e300"),
                                            (options.RATE, "1e-300", "must be >= 0.001, got 1e-300"),
                                            (options.comma_rates, "2,1e-300", "rates >= 0.001 req/s"),
                                            (options.checked(float, 0, 2.5), "3", "must be <= 2.5, got 3"),
                                            (options.profile_name, "", "an empty one"),
                                            (options.profile_name, "  ", "an empty one"),
                                            (options.nonempty("a run folder"), "", "expected a run folder, got "
                                                                                   "an empty one"),
                                            (options.SEED, "-1", "must be >= 0, got -1"),
                                            (options.SEED, "99999999999999999999", "must be <= 4,294,967,295"),
                                            (options.comma_choices(("hf", "server")), "server,hf,server",
                                             "'server' is given twice in 'server,hf,server'"),
                                            (options.comma_rates, "1,-2", "rates >= 0.001 req/s, got '1,-2'"),
                                            (options.POSITIVE_FLOAT, "nan", "expected a finite number, got nan"),
                                            (options.checked(float, 0), "inf", "finite number, got inf"),
                                            (options.comma_rates, "2,nan", "finite numbers, got '2,nan'"),
                                            (options.base_url, "notaurl", "expected http"),
                                            (options.base_url, "ftp://h/v1", "expected http"),
                                            (options.base_url, "http:///v1", "expected http"),
                                            (options.base_url, "http://h:99999/v1", "not a URL")])
def test_bad_values_are_argparse_errors(parse, text, msg):
    with pytest.raises(argparse.ArgumentTypeError, match=msg):
        parse(text)


def test_comma_lists_parse():
    assert options.base_url("https://host.example:8443/v1") == "https://host.example:8443/v1"
    assert options.comma_ints("1, 4,16") == [1, 4, 16]
    assert options.comma_rates("0.5,2") == [0.5, 2.0]
    pick = options.comma_choices(("hf", "vllm", "server"))
    assert pick("hf,server") == ("hf", "server")
    with pytest.raises(argparse.ArgumentTypeError, match="unknown 'foo'"):
        pick("hf,foo")


@dataclasses.dataclass(frozen=True)
class T:
    sizes: tuple[int, ...] = (1, 2)
    rounds: int = 2
    quiet: bool = False


def test_settings_are_built_from_the_options_of_the_same_name():
    p = argparse.ArgumentParser()
    options.add(p, "--sizes", T, type=options.comma_ints)
    options.add(p, "--rounds", T, type=options.POSITIVE_INT)
    p.add_argument("--out")  # no field of that name: left out
    a = p.parse_args(["--sizes", "4,8", "--out", "x"])
    st = options.settings(a, T)
    assert st == T(sizes=(4, 8), rounds=2, quiet=False)  # the comma list became the field's tuple
    assert options.settings(p.parse_args([]), T, quiet=True) == T(quiet=True)
    assert options.given(a, T, skip=("rounds",)) == {"sizes": (4, 8)}


def test_rows_print_aligned_with_names_from_files_escaped(capsys):
    """Cells hold names from files (an EPUB's chapter hrefs, a folder's programs): an ESC in one coloured or
    cleared the terminal under the table."""
    options.print_rows([{"doc": "a\x1b[2Jb", "tokens": 7}, {"doc": "駅", "tokens": 1234}])
    assert capsys.readouterr().out.splitlines() == ["doc        tokens", "a\\x1b[2Jb  7     ",
                                                    "駅          1234  "]
    options.print_rows([{"program": "bad", "rounds": None, "stop": "x"}, {"program": "ok", "rounds": 2}])
    assert capsys.readouterr().out.splitlines() == ["program  rounds  stop", "bad      -       x   ",
                                                    "ok       2           "]
