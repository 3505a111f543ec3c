"""lab.c2rust.report: the batch table (CLI and notebook 05 alike) and the cases-passed chart."""

from lab import c2rust


def test_table_keeps_the_summary_columns_in_order_and_the_chart_draws_a_bad_task_as_zero():
    rows = [{"program": "fib", "task": "sactor", "ok": True, "compiled": True, "passed": 5, "total": 5, "rounds": 1,
             "tokens": 900, "unsafe": 0, "stop": "passed", "history": [], "crates": []},
            {"program": "bad", "bad_task": True, "ok": False, "stop": "C reference fails"}]
    t = c2rust.table(rows)
    assert list(t[0]) == list(c2rust.report.COLUMNS) and "history" not in t[0]
    assert t[1]["passed"] is None and t[1]["stop"] == "C reference fails"
    fig = c2rust.passed_plot(rows, "m", 2)
    assert [p.get_height() for p in fig.axes[0].patches] == [1.0, 0]
