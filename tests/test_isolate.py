"""GPU memory has one owner: the decisions without a GPU, and work in a process of its own."""

import pytest

from lab import LabError, config, isolate


def _prof(device: str, tp: int = 1) -> config.Profile:
    return config.Profile("p", "m", "m", device=device, serve={"tensor_parallel_size": tp})


def test_single_gpu_work_is_pinned_to_the_first_visible_gpu(monkeypatch):
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES", raising=False)
    assert isolate.pinned_env(_prof("cpu")) == {}
    assert isolate.pinned_env(_prof("cuda")) == {"CUDA_VISIBLE_DEVICES": "0"}
    assert isolate.pinned_env(_prof("cuda"), gpus=4) == {"CUDA_VISIBLE_DEVICES": "0,1,2,3"}
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "2, 3")  # a user's own choice is narrowed, never widened
    assert isolate.pinned_env(_prof("cuda")) == {"CUDA_VISIBLE_DEVICES": "2"}


def test_gpu_work_refuses_to_start_beside_a_gpu_server(monkeypatch):
    running = {8011: "tiny", 8000: "qwen3-4b", 9000: "gone-profile"}
    assert isolate.servers_in_the_way(_prof("cpu"), running) == []  # CPU: shared RAM, slower but no OOM
    assert isolate.servers_in_the_way(_prof("cuda"), running) == [8000, 9000]  # tiny's server is on CPU
    monkeypatch.setattr(isolate, "running_servers", lambda: {8000: "qwen3-4b"})
    with pytest.raises(LabError, match=r"fine-tuning needs the GPU memory .* port 8000 .*lab serve stop --port 8000"):
        isolate.require_gpu_free(_prof("cuda"), "fine-tuning")
    isolate.require_gpu_free(_prof("cpu"), "fine-tuning")  # no error


def test_isolated_work_reports_its_error_in_one_line(tmp_path):
    with pytest.raises(LabError, match="does not exist"):
        isolate.run("lab.finetune.train:train_dict", {"model": "x", "train": str(tmp_path / "none.jsonl"),
                                                      "heldout": str(tmp_path / "none.jsonl"), "out": str(tmp_path)},
                    quiet=True)
    with pytest.raises(LabError, match="unknown isolated function"):
        isolate.run("os:system", {"command": "true"})


def test_a_bug_in_isolated_work_is_one_line_with_its_traceback_in_the_logs(tmp_path):
    with pytest.raises(LabError, match=r"^internal error TypeError: .*bogus.* traceback in \S+crash-") as e:
        isolate.run("lab.finetune.train:train_dict", {"model": "x", "bogus": 1}, env={"LAB_LOGS": str(tmp_path)},
                    quiet=True)
    assert "\n" not in str(e.value)
    assert "Traceback" in next(tmp_path.glob("crash-*.txt")).read_text()
