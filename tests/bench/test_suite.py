"""lab.bench.suite: every ratio measured in one run."""

import pytest

from lab import bench


@pytest.mark.server
def test_suite_prints_ratios_measured_in_one_run(tiny_server):
    res = bench.suite("tiny", num_prompts=4, output_len=4, concurrency=2, repeats=1)
    assert set(res["tok_s_median"]) == {"lab_c1", "lab_c2", "lab_c2_stream", "bare_openai_c2"}
    assert res["scaling"] == round(res["tok_s_median"]["lab_c2"] / res["tok_s_median"]["lab_c1"], 2)
    assert res["lab_vs_bare"] > 0
