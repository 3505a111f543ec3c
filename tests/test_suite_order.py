"""The suite's scheduling lists in conftest.py name files that exist (a renamed file would silently lose its place
and its lock)."""

import ast

from helpers import ROOT


def test_the_longest_first_and_cpu_bound_lists_name_existing_test_files():
    tree = ast.parse((ROOT / "conftest.py").read_text())
    lists = {t.id: ast.literal_eval(node.value) for node in tree.body if isinstance(node, ast.Assign)
             for t in node.targets if isinstance(t, ast.Name) and t.id in ("LONGEST_FIRST", "CPU_BOUND")}
    assert set(lists) == {"LONGEST_FIRST", "CPU_BOUND"}
    for name, files in lists.items():
        missing = [f for f in files if not (ROOT / f).is_file()]
        assert not missing and len(set(files)) == len(files), (name, missing)
    assert set(lists["CPU_BOUND"]) <= set(lists["LONGEST_FIRST"])  # spread out among the long files
