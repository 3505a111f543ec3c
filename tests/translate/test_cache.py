"""lab.translate.cache: a record removed during a run is translated again, never an error."""

import shutil


def test_a_cache_record_removed_during_the_run_is_not_cached_any_more(tmp_path):
    """The output folder deleted mid-run: the next identical chunk was an error (`cache record ... does not
    exist`) and the run stopped; now it is translated again and the run finishes."""
    from lab.translate.cache import ChunkCache
    cache = ChunkCache(tmp_path / "out")
    cache.put("doc", "駅に着いた。", ["到了车站。"], {}, "fp")
    assert cache.get("doc", "駅に着いた。", "fp") == ["到了车站。"]
    shutil.rmtree(tmp_path / "out")
    assert cache.get("doc", "駅に着いた。", "fp") is None
    cache.put("doc", "駅に着いた。", ["到了车站。"], {}, "fp")  # written again where it was
    assert cache.get("doc", "駅に着いた。", "fp") == ["到了车站。"] and cache.count() == 1
