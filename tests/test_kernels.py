"""Kernel sockets of headless runs (lab/kernels.py); two runs in one folder sharing none is in test_runner_hangs.py."""

from pathlib import Path

from lab import kernels


def test_socket_paths_fit_a_unix_socket_address(tmp_path):
    short = kernels.socket_prefix(tmp_path / "r", "01_serving")
    assert short.startswith(str(tmp_path)) and len(short) <= 100
    deep = tmp_path / ("d" * 120)
    far = kernels.socket_prefix(deep, "01_serving")
    assert len(far) + 3 <= 100 and Path(far).parent.stat().st_mode & 0o777 == 0o700
    kernels.release_sockets(far)
    assert not Path(far).parent.exists()  # the temporary folder goes with the run
    kernels.release_sockets(short)
    assert tmp_path.exists()
