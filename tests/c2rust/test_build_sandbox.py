"""The compilers run in the sandbox: code that acts at compile time reads nothing of the host's."""

import pytest

from lab.c2rust import sandbox
from lab.c2rust.harness import check_source
from lab.c2rust.tasks import Case

SECRET = "SECRET-7f3a9c-do-not-leak"
CASES = [Case(args=[], stdin="", expected="ok\n")]

pytestmark = pytest.mark.skipif(not sandbox.protections()["private_filesystem"],
                                reason="bubblewrap is not installed (make c2rust-deps)")


@pytest.fixture
def secret(tmp_path, monkeypatch):
    f = tmp_path / "host-secret.txt"
    f.write_text(SECRET + "\n")
    monkeypatch.setenv("LAB_TEST_SECRET", SECRET)
    return f


def _report_text(rep) -> str:
    return rep.compile_errors + "".join(c.diff for c in rep.cases)


@pytest.mark.parametrize("attack", [
    'fn main() {{ print!("{{}}", include_str!("{f}")); }}',
    'fn main() {{ let b = include_bytes!("{f}"); print!("{{}}", String::from_utf8_lossy(b)); }}',
    'const S: &str = include!("{f}");\nfn main() {{ print!("{{}}", S); }}',
    '#[path = "{f}"]\nmod leak;\nfn main() {{}}',
    'fn main() {{ print!("{{}}", include_str!("/etc/passwd")); }}',
    'fn main() {{ print!("{{}}", include_str!("/proc/1/environ")); }}',
])
def test_compile_time_reads_of_host_files_fail(secret, attack):
    rep = check_source(attack.format(f=secret), CASES)
    assert not rep.compiled
    assert SECRET not in _report_text(rep) and "root:" not in _report_text(rep)
    assert "couldn't read" in rep.compile_errors or "No such file" in rep.compile_errors


def test_the_callers_environment_reaches_neither_compiler_nor_program(secret):
    src = ('fn main() { println!("{:?} {:?}", option_env!("LAB_TEST_SECRET"), std::env::var("LAB_TEST_SECRET").ok()); '
           'println!("{}", env!("HOME")); }')
    rep = check_source(src, [Case(args=[], stdin="", expected="None None\n/tmp\n")])
    assert rep.compiled and rep.passed == 1, _report_text(rep)
    assert SECRET not in _report_text(rep)


def test_c_includes_of_host_files_fail(secret):
    rep = check_source(f'#include "{secret}"\nint main(void) {{ return 0; }}\n', [Case(args=[], stdin="", expected="")],
                       "c")
    assert not rep.compiled and SECRET not in rep.compile_errors and "No such file" in rep.compile_errors


def test_cargo_builds_with_the_offline_registry_inside_the_sandbox():
    from lab.c2rust.build import available_crates
    if "libc" not in available_crates():
        pytest.skip("librust-libc-dev is not installed (make c2rust-deps)")
    src = 'fn main() { if unsafe { libc::getpid() } > 0 { println!("ok"); } }'
    rep = check_source(src, CASES)
    assert rep.compiled and rep.passed == 1 and rep.crates == ["libc"], _report_text(rep)


def test_the_sandbox_wraps_the_compiler():
    from pathlib import Path

    from lab.c2rust.build import rust_tool
    rustc, readable = rust_tool("rustc")
    argv = sandbox.command([rustc, "main.rs"], Path("/tmp/x"), 60, limits=sandbox.BUILD, readable=readable)
    assert argv[0].endswith("bwrap") and "--clearenv" in argv and {"--unshare-all", "--unshare-net"} & set(argv)
    assert argv[argv.index("--") + 1:][-2:] == [rustc, "main.rs"]
