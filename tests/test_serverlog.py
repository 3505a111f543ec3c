"""lab.serverlog: a port's log file, its last lines, and the error a failed start raised first."""

import pytest

from lab import LabError, paths, serverlog


def test_log_tail_drops_colour_codes(tmp_path):
    log = tmp_path / "v.log"
    log.write_text("x\n\x1b[0;36m(EngineCore pid=7)\x1b[0;0m \x1b[32mINFO\x1b[0m loading\n")
    assert serverlog.tail(log, 1) == "(EngineCore pid=7) INFO loading\n"


def test_a_ports_log_is_its_newest_and_a_missing_one_is_one_line(tmp_path, monkeypatch):
    monkeypatch.setenv("LAB_LOGS", str(tmp_path))
    assert paths.logs() == tmp_path
    for stamp in ("20261201T000000Z", "20261202T000000Z"):
        (tmp_path / f"vllm-{stamp}-tiny-8999.log").write_text(f"{stamp}\n")
    (tmp_path / "vllm-20261203T000000Z-tiny-8998.log").write_text("other port\n")
    assert serverlog.log_of(8999).name == "vllm-20261202T000000Z-tiny-8999.log"
    assert serverlog.logs_tail(5, 8999) == "20261202T000000Z\n"
    with pytest.raises(LabError, match=f"no server log for port 8997 in {tmp_path}"):
        serverlog.log_of(8997)
    with pytest.raises(LabError, match="no server log yet .*latest.log is missing"):
        serverlog.log_of()


# A failed start-up logs three tracebacks (worker, EngineCore, API server); vLLM 0.32's lines, shortened.
FAILED_START = """(APIServer pid=9) WARNING 12-06 18:24:51 [system_utils.py:255] Found ulimit of 20000 and failed to \
automatically increase with error current limit exceeds maximum limit. This can cause fd limit errors like \
`OSError: [Errno 24] Too many open files`.
(VllmWorker-0 pid=11) ERROR 12-06 18:25:12 [multiproc_executor.py:953]     raise ValueError(
(VllmWorker-0 pid=11) ERROR 12-06 18:25:12 [multiproc_executor.py:953] ValueError: Available memory on node 0 \
(21.46/23.54 GiB) on startup is less than desired CPU memory utilization (0.92, 21.66 GiB).
(EngineCore pid=10) ERROR 12-06 18:25:14 [core.py:1510] Exception: WorkerProc initialization failed due to an \
exception in a background process. See stack trace for root cause.
Exception: WorkerProc initialization failed due to an exception in a background process. See stack trace for root \
cause.
    raise RuntimeError(
RuntimeError: Engine core initialization failed. See root cause above. Failed core proc(s): {'EngineCore': 1}
"""


def test_a_failed_start_is_told_by_its_first_error_not_the_wrappers(tmp_path):
    log = tmp_path / "v.log"
    log.write_text(FAILED_START)
    assert serverlog.cause(log) == ("ValueError: Available memory on node 0 (21.46/23.54 GiB) on startup is less "
                                    "than desired CPU memory utilization (0.92, 21.66 GiB).")
    # pydantic's detail is on the indented lines below its "1 validation error"
    log.write_text("pydantic_core._pydantic_core.ValidationError: 1 validation error for ModelConfig\n"
                   "  Value error, model type `no-such-architecture` is not recognised\n\nYou can update\n")
    assert serverlog.cause(log) == ("pydantic_core._pydantic_core.ValidationError: 1 validation error for "
                                    "ModelConfig Value error, model type `no-such-architecture` is not recognised")
    log.write_text("INFO loading\nKilled\n\n")  # no exception at all (the OOM killer): the last line says it
    assert serverlog.cause(log) == "Killed"
    log.write_text("")
    assert serverlog.cause(log) == "(the log is empty)"
