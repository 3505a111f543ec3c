"""Doctor: checks on this machine (no GPU), the libcuda diagnosis, and what a profile needs from the machine."""

import dataclasses

from helpers import lab

from lab import config, doctor


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


def test_doctor_profile_checks_what_the_plan_needs():
    g = {"driver": "570.86", "devices": [{"index": i, "name": "NVIDIA RTX 6000 Ada Generation",
                                          "memory_total_gb": 47.5, "memory_used_gb": 0.5} for i in range(4)]}
    rows = {r["check"]: r for r in doctor.profile_checks(config.load("qwen3-32b-awq", check_device=False), g,
                                                         "13.0", 100.0, False, "/usr/bin/rustc", "0.32.0")}
    assert rows["gpus"]["status"] == "ok" and rows["gpu memory"]["status"] == "ok"
    assert rows["driver vs cuda build"]["status"] == "fail" and "R580" in rows["driver vs cuda build"]["detail"]
    assert rows["disk"]["status"] == "ok" and "19.3 GB" in rows["disk"]["detail"]
    assert "Qwen/Qwen3-32B" in rows["other models"]["detail"]
    two = {**g, "devices": g["devices"][:2], "driver": "580.65"}
    rows = {r["check"]: r for r in doctor.profile_checks(config.load("qwen3-32b-awq", check_device=False), two,
                                                         "13.0", 10.0, False, None, "0.32.0 (cpu)")}
    assert rows["gpus"]["status"] == rows["disk"]["status"] == rows["rustc"]["status"] == "fail"
    assert rows["vllm build"]["status"] == "fail" and rows["driver vs cuda build"]["status"] == "ok"
    r = lab("doctor", "--profile", "tiny")
    assert r.returncode == 0 and "runs on CPU" in r.stdout


def test_cpu_profiles_say_how_many_cores_decode():
    facts = ({}, None, 100.0, True, "/usr/bin/rustc", "0.32.0 (cpu)")
    tiny = config.load("tiny", check_device=False)
    unsaid = dataclasses.replace(tiny, serve={**tiny.serve, "env": {}})  # a user's profile that sets neither knob
    rows = {r["check"]: r for r in doctor.profile_checks(unsaid, *facts, cores=2)}
    assert rows["decode threads"]["status"] == "warn"  # vLLM's default keeps 1 of 2 cores for its front end
    assert "1 of 2 cores" in rows["decode threads"]["detail"]
    assert 'VLLM_CPU_NUM_OF_RESERVED_CPU = "0"' in rows["decode threads"]["detail"]
    rows = {r["check"]: r for r in doctor.profile_checks(unsaid, *facts, cores=16)}
    assert rows["decode threads"]["status"] == "info"  # 1 of 16 idle: said, not warned
    rows = {r["check"]: r for r in doctor.profile_checks(unsaid, *facts, cores=2,
                                                         environ={"VLLM_CPU_NUM_OF_RESERVED_CPU": "0"})}
    assert rows["decode threads"]["status"] == "ok"  # exported in the shell: the server inherits it
    rows = {r["check"]: r for r in doctor.profile_checks(tiny, *facts, cores=2)}
    assert rows["decode threads"]["status"] == "info"  # the toy keeps its front-end core on purpose (profiles.toml)
    for env, status, text in (({"VLLM_CPU_NUM_OF_RESERVED_CPU": "0"}, "ok", "2 of 2"),
                              ({"VLLM_CPU_NUM_OF_RESERVED_CPU": "1"}, "info", "1 of 2"),  # a choice, not a slip
                              ({"VLLM_CPU_OMP_THREADS_BIND": "0"}, "info", "1 of 2")):
        row = doctor.decode_threads_row(env, 2)
        assert (row["status"], text in row["detail"], next(iter(env)) in row["detail"]) == (status, True, True)
    rows = {r["check"]: r for r in doctor.profile_checks(config.load("qwen2.5-coder-1.5b", check_device=False),
                                                         *facts, cores=2)}
    assert rows["decode threads"]["status"] == "ok"  # the profile sets VLLM_CPU_NUM_OF_RESERVED_CPU = "0"
    rows = doctor.profile_checks(config.load("qwen3-4b", check_device=False), *facts, cores=2)
    assert "decode threads" not in {r["check"] for r in rows}  # a GPU profile decodes on the GPU


def test_cpu_profiles_say_whether_vllm_will_find_its_memory():
    """A profile without VLLM_CPU_KVCACHE_SPACE wants gpu_memory_utilization (0.92 by default) of all RAM free at
    start: a user's profile failed so on a 24 GB machine with 23.0 GiB free (vLLM's own processes took 1.5)."""
    tiny = config.load("tiny", check_device=False)
    unsaid = dataclasses.replace(tiny, serve={k: v for k, v in tiny.serve.items()
                                              if k not in ("env", "gpu_memory_utilization")})
    facts = ({}, None, 100.0, True, "/usr/bin/rustc", "0.32.0 (cpu)")

    def row(prof, total, free, environ=None):
        return {r["check"]: r for r in doctor.profile_checks(prof, *facts, cores=2, environ=environ,
                                                              memory=(total, free))}["cpu memory"]
    assert (row(unsaid, 23.5, 22.9)["status"], "21.6 GiB" in row(unsaid, 23.5, 22.9)["detail"]) == ("warn", True)
    low = row(unsaid, 23.5, 20.0)
    assert low["status"] == "fail" and 'set VLLM_CPU_KVCACHE_SPACE (GiB of KV cache, e.g. "2")' in low["detail"]
    assert row(unsaid, 64.0, 60.0)["status"] == "warn" and row(unsaid, 64.0, 63.0)["status"] == "ok"
    half = dataclasses.replace(unsaid, serve={**unsaid.serve, "gpu_memory_utilization": 0.5})
    assert row(half, 23.5, 20.0)["status"] == "ok"
    assert row(unsaid, 23.5, 20.0, {"VLLM_CPU_KVCACHE_SPACE": "2"})["status"] == "ok"  # then no share is checked
    assert row(tiny, 23.5, 2.5)["status"] == "warn"  # the toy's 1 GiB of KV cache, with ~2 GiB for vLLM itself
    assert row(tiny, 23.5, 0.5)["status"] == "fail"
    assert "cpu memory" not in {r["check"] for r in doctor.profile_checks(tiny, *facts, cores=2)}  # no facts given
