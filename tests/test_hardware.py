"""lab.hardware: NVML's answers become the doctor's GPU facts; no driver is the CPU path, not an error."""

import sys
import types

from lab import hardware


def _nvml(devices: list[tuple[bytes | str, int, int]], fail: Exception | None = None) -> types.ModuleType:
    """A stand-in pynvml with the given (name, total, used) devices; NVML's C library cannot be faked otherwise."""
    m = types.ModuleType("pynvml")
    m.shutdowns = 0

    def init() -> None:
        if fail:
            raise fail

    def shutdown() -> None:
        m.shutdowns += 1
    m.nvmlInit, m.nvmlShutdown = init, shutdown
    m.nvmlSystemGetDriverVersion = lambda: b"550.54.15"
    m.nvmlSystemGetCudaDriverVersion = lambda: 12040
    m.nvmlDeviceGetCount = lambda: len(devices)
    m.nvmlDeviceGetHandleByIndex = lambda i: i
    m.nvmlDeviceGetName = lambda h: devices[h][0]
    m.nvmlDeviceGetMemoryInfo = lambda h: types.SimpleNamespace(total=devices[h][1], used=devices[h][2])
    return m


def test_each_gpu_with_its_memory_and_the_driver(monkeypatch):
    fake = _nvml([(b"NVIDIA RTX 6000 Ada Generation", 48 * 2**30, 3 * 2**29), ("NVIDIA H200", 141 * 2**30, 0)])
    monkeypatch.setitem(sys.modules, "pynvml", fake)
    g = hardware.gpus()
    assert g == {"driver": "550.54.15", "cuda_driver": "12.4", "devices": [
        {"index": 0, "name": "NVIDIA RTX 6000 Ada Generation", "memory_total_gb": 48.0, "memory_used_gb": 1.5},
        {"index": 1, "name": "NVIDIA H200", "memory_total_gb": 141.0, "memory_used_gb": 0.0}]}
    assert hardware.gpu_count() == 2 and fake.shutdowns == 2  # NVML is shut down after every query


def test_no_driver_is_zero_gpus_with_the_reason(monkeypatch):
    monkeypatch.setitem(sys.modules, "pynvml", _nvml([], fail=OSError("libnvidia-ml.so.1: cannot open")))
    assert hardware.gpus() == {"error": "OSError: libnvidia-ml.so.1: cannot open"}
    assert hardware.gpu_count() == 0
    monkeypatch.setitem(sys.modules, "pynvml", None)  # not installed at all
    assert hardware.gpus()["error"].startswith("ModuleNotFoundError") and hardware.gpu_count() == 0


def test_bf16_in_hardware_is_read_from_the_cpu_flags():
    zen3 = "processor\t: 0\nflags\t\t: fpu sse2 avx avx2 fma bmi2\n"
    zen4 = "processor\t: 0\nflags\t\t: fpu avx2 avx512f avx512_bf16 avx512_vnni\n"
    sapphire = "flags\t\t: avx2 avx512f amx_tile amx_bf16 amx_int8\n"
    graviton3 = "processor\t: 0\nFeatures\t: fp asimd sve bf16 i8mm\n"
    assert [hardware.cpu_bf16(t) for t in (zen3, zen4, sapphire, graviton3, "")] == [False, True, True, True, False]
    assert isinstance(hardware.cpu_bf16(), bool)  # this machine's own file, whatever it says


def test_training_computes_in_float32_on_a_cpu_that_emulates_bf16(monkeypatch):
    from lab.finetune.base import compute_dtype
    monkeypatch.setattr(hardware, "cpu_bf16", lambda cpuinfo=None: False)
    monkeypatch.setattr("torch.cuda.is_available", lambda: False)
    assert compute_dtype("auto") == "float32" and compute_dtype("bfloat16") == "bfloat16"
    monkeypatch.setattr(hardware, "cpu_bf16", lambda cpuinfo=None: True)
    assert compute_dtype("auto") == "bfloat16" and compute_dtype("float32") == "float32"


def test_a_profile_served_in_auto_bf16_gets_float32_where_bf16_is_emulated(monkeypatch, tmp_path):
    """Resolved when the profile loads, so the command line, the offline engine and the roofline all agree."""
    from lab import config
    zen3, zen4 = "flags\t\t: avx2 fma\n", "flags\t\t: avx2 avx512f avx512_bf16\n"
    assert [hardware.resolve_dtype("auto-bf16", "cpu", c) for c in (zen3, zen4)] == ["float32", "bfloat16"]
    assert hardware.resolve_dtype("auto-bf16", "cuda", zen3) == "bfloat16"
    assert hardware.resolve_dtype("bfloat16", "cpu", zen3) == "bfloat16"  # said outright: kept
    f = tmp_path / "p.toml"
    f.write_text('[mine]\nmodel = "m"\nserved_name = "m"\n[mine.serve]\ndtype = "auto-bf16"\n')
    monkeypatch.setenv("LAB_PROFILES", str(f))
    for native, want in ((False, "float32"), (True, "bfloat16")):
        monkeypatch.setattr(hardware, "cpu_bf16", lambda cpuinfo=None, n=native: n)
        prof = config.load("mine")
        assert prof.serve["dtype"] == want and ["--dtype", want] == config.serve_command(prof)[
            config.serve_command(prof).index("--dtype"):][:2]
        assert config.offline_engine_args(prof)["dtype"] == want


def test_the_vector_isa_is_the_widest_the_flags_name():
    x86 = "flags\t\t: sse2 avx avx2 fma\n"
    assert hardware.cpu_vector_isa(x86) == "AVX2"
    assert hardware.cpu_vector_isa(x86.replace("fma", "fma avx512f avx512bw")) == "AVX-512"
    assert hardware.cpu_vector_isa("Features\t: fp asimd sve bf16\n") == "SVE"
    assert hardware.cpu_vector_isa("Features\t: fp asimd\n") == "NEON"
    assert hardware.cpu_vector_isa("") == "none found" and hardware.cpu_flags("") == set()


def test_the_doctor_says_what_an_emulated_bf16_means(monkeypatch):
    from lab import doctor
    monkeypatch.setattr(hardware, "cpu_bf16", lambda cpuinfo=None: False)
    monkeypatch.setattr(hardware, "cpu_vector_isa", lambda cpuinfo=None: "AVX2")
    row = next(r for r in doctor.checks() if r["check"] == "cpu")
    assert row["status"] == "info" and "AVX2, bf16 emulated" in row["detail"] and "float32" in row["detail"]
    monkeypatch.setattr(hardware, "cpu_bf16", lambda cpuinfo=None: True)
    monkeypatch.setattr(hardware, "cpu_vector_isa", lambda cpuinfo=None: "AVX-512")
    row = next(r for r in doctor.checks() if r["check"] == "cpu")
    assert row["status"] == "ok" and row["detail"].endswith("AVX-512, bf16 in hardware")


def test_server_threads_follow_the_bind_setting():
    assert hardware.server_threads({"VLLM_CPU_OMP_THREADS_BIND": "0-3,8"}) == 5
    assert hardware.server_threads({"VLLM_CPU_OMP_THREADS_BIND": "0-1|2-3"}) == 2  # per data-parallel rank
    cores = len(__import__("os").sched_getaffinity(0))
    assert hardware.server_threads({}) == max(1, cores - 1)  # vLLM's auto binding keeps one core for its front end
    assert hardware.server_threads({"VLLM_CPU_NUM_OF_RESERVED_CPU": "0"}) == cores
    assert hardware.server_threads({}, cores=16) == 15 and hardware.server_threads({}, cores=1) == 1
    assert hardware.server_threads({"VLLM_CPU_NUM_OF_RESERVED_CPU": "2"}, cores=8) == 6


def test_total_and_available_memory_are_read_from_meminfo():
    info = ("MemTotal:       24683124 kB\nMemFree:         1000000 kB\nMemAvailable:   23068672 kB\n"
            "HugePages_Total:       0\n")
    total, free = hardware.memory_gib(info)
    assert round(total, 2) == 23.54 and free == 22.0
    assert hardware.memory_gib("") == (0.0, 0.0)
