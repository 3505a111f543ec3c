"""Doctor: checks on this machine (no GPU) and the libcuda diagnosis."""

from lab import doctor


def test_checks_pass_without_gpu():
    rows = doctor.checks()
    by = {r["check"]: r for r in rows}
    assert by["python"]["status"] == "ok"
    assert by["torch"]["status"] == "ok" and by["vllm"]["status"] == "ok"
    if "gpu" in by:  # no GPU: an info line, not a failure
        assert by["gpu"]["status"] == "info" and "CPU path" in by["gpu"]["detail"]
    assert not [r for r in rows if r["status"] == "fail"]


def test_libcuda_fix_is_user_level(monkeypatch):
    monkeypatch.setattr(doctor.glob, "glob", lambda pat: ["/usr/lib/x86_64-linux-gnu/libcuda.so.1"]
                        if pat.startswith("/usr/lib/x86_64") else [])
    info = doctor.libcuda()
    assert "ln -sf /usr/lib/x86_64-linux-gnu/libcuda.so.1" in info["fix"]
    assert "/.local/lib/cuda" in info["fix"] and "sudo" not in info["fix"]
    monkeypatch.setattr(doctor.glob, "glob", lambda pat: ["/usr/lib64/libcuda.so", "/usr/lib64/libcuda.so.1"]
                        if pat.startswith("/usr/lib64") else [])
    assert "fix" not in doctor.libcuda()


def test_environment_summary():
    env = doctor.environment()
    assert env["versions"]["vllm"].startswith("0.")
    assert len(env["git_commit"]) in (40, 7) or env["git_commit"] == "unknown"
    assert env["device"].startswith("CPU only") or "x " in env["device"]
