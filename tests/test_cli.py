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
