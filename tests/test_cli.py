"""The `lab` command as a user meets it: one-line errors with a non-zero exit, --help for every command."""

from helpers import lab


def test_cli_bad_inputs_are_one_line_and_non_zero():
    cases = [(["run", "99"], "no notebook '99'"),
             (["run", "00", "-p", "oops"], "malformed -p 'oops'"),
             (["run", "01", "-p", "max_tokns=5"], "-p max_tokns: no selected notebook (01_serving) declares it; "
                                                  "declared: concurrency, interactive, max_tokens"),
             (["run", "--profile", "nope"], "unknown profile 'nope'"),
             (["serve", "status", "--profile", "nope"], "unknown profile 'nope'"),
             (["journal", "build"], None)]
    for args, msg in cases:
        r = lab(*args)
        if msg is None:
            assert r.returncode == 0
            continue
        assert r.returncode == 1, (args, r.stdout, r.stderr)
        assert r.stderr.startswith("error: ") and msg in r.stderr and r.stderr.count("\n") == 1, r.stderr


def test_help_explains_every_option():
    for args in (["--help"], ["run", "--help"], ["serve", "start", "--help"], ["tiny", "build", "--help"]):
        r = lab(*args)
        assert r.returncode == 0 and "usage: lab" in r.stdout
    out = lab("run", "--help").stdout
    for opt in ("--profile", "--param", "--params-file", "--fail-fast", "--share-server"):
        assert opt in out


def test_sighup_interrupts_like_ctrl_c_unless_nohup_ignores_it(monkeypatch, capsys):
    import os
    import signal
    import time

    from lab import cli
    from lab.c2rust import cli as c2rust_cli

    def hang_up(a):
        os.kill(os.getpid(), signal.SIGHUP)
        time.sleep(0.5)  # the handler raises inside this sleep
        print("went on")
        return 0
    monkeypatch.setattr(c2rust_cli, "_check", hang_up)
    old = signal.signal(signal.SIGHUP, signal.SIG_IGN)  # as under `nohup`
    try:
        assert cli.main(["c2rust", "check", "a.c", "t.json", "a.rs"]) == 0
        assert "went on" in capsys.readouterr().out
        signal.signal(signal.SIGHUP, signal.SIG_DFL)
        assert cli.main(["c2rust", "check", "a.c", "t.json", "a.rs"]) == 128 + signal.SIGHUP
        err = capsys.readouterr().err
        assert "interrupted (SIGHUP)" in err and "went on" not in err
        assert signal.getsignal(signal.SIGHUP) == signal.SIG_DFL  # main() put the handler back
    finally:
        signal.signal(signal.SIGHUP, old)


def test_an_unknown_option_is_named_by_its_own_subcommand():
    """argparse reported it as `lab: error: unrecognized arguments` under the root usage."""
    for args, who, bad in ((["serve", "logs", "--lines", "3"], "lab serve logs", "--lines 3"),
                           (["translate", "x.txt", "-o", "o", "--bogus"], "lab translate run", "--bogus"),
                           (["c2rust", "check", "a.c", "t.json", "a.rs", "--zz"], "lab c2rust check", "--zz")):
        r = lab(*args)
        assert r.returncode == 2 and r.stderr.startswith(f"usage: {who} "), r.stderr
        assert r.stderr.rstrip().endswith(f"{who}: error: unrecognized arguments: {bad}"), r.stderr


def test_every_option_that_takes_a_value_states_its_default_in_help():
    """`--help` states every default: a value option whose help says none is found by walking the real parser."""
    import argparse

    from lab import cli
    missing, seen = [], set()

    def walk(p: argparse.ArgumentParser, path: str) -> None:
        for a in p._actions:
            if isinstance(a, argparse._SubParsersAction):
                for name, sub in a._name_parser_map.items():
                    seen.add(f"{path} {name}")
                    walk(sub, f"{path} {name}")
            elif a.option_strings and a.nargs != 0 and not a.required and a.help != argparse.SUPPRESS:
                text = p._get_formatter()._expand_help(a) if a.help else ""
                if "default" not in text.lower():
                    missing.append(f"{path} {a.option_strings[-1]}")
    walk(cli.parser(), "lab")
    assert not missing, missing
    assert "lab translate run" in seen and "lab translate eval" in seen  # every level is walked, defaults too


def test_options_before_the_input_reach_the_default_action(tmp_path):
    """`lab translate --concurrency 4 FILE -o OUT` made `4` the input and refused FILE: the options of the
    default action come before its positionals as often as after."""
    from lab import cli, options
    ap = cli.parser()
    a = ap.parse_args(options.route_default(ap, ["translate", "--concurrency", "3", "in.txt", "-o", "out"]))
    assert (a.action, a.input, a.out, a.concurrency) == ("run", "in.txt", "out", 3)
    assert options.route_default(ap, ["translate", "eval", "h", "r"])[1] == "eval"  # a named action stays
    assert options.route_default(ap, ["translate", "-h"]) == ["translate", "-h"]  # the command's own help
    assert options.route_default(ap, ["serve", "--port", "1"]) == ["serve", "--port", "1"]  # no default there
    r = lab("translate", "--concurrency", "0", str(tmp_path / "in.txt"), "-o", str(tmp_path / "o"))
    assert r.returncode == 2 and "--concurrency: must be >= 1, got 0" in r.stderr, r.stderr


def test_the_cli_starts_without_the_network_and_array_libraries():
    """`lab --help`, `lab run --plan` and `lab translate eval` need none of openai, httpx, numpy or torch: with them
    imported at the top, every command took 1.5 s to start (0.8 s of it openai), 0.28 s without."""
    import subprocess
    import sys
    code = ("import sys, lab.cli; print(' '.join(m for m in ('openai', 'httpx', 'httpx2', 'numpy', 'torch') "
            "if m in sys.modules))")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0 and r.stdout.strip() == "", r.stdout + r.stderr
