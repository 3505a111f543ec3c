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
