"""lab.serverlog: a port's log file and its last lines."""

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
