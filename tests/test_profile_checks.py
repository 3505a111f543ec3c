"""lab.profile_checks: every field and [serve] key of a profile checked when it loads, one line naming the
profile and the field (through config.load, as a user's lab.toml or environment reaches them)."""

import pytest

from lab import LabError, config
from lab.profile_checks import checked_body, checked_host


@pytest.mark.parametrize("toml,msg", [
    ('[tiny.serve]\nmax_model_len = -1\n', "serve.max_model_len must be a whole number >= 1, got -1"),
    ('[tiny.serve]\nmax_num_seqs = "many"\n', "serve.max_num_seqs must be a whole number >= 1, got 'many'"),
    ('[tiny.serve]\ngpu_memory_utilization = 1.5\n', r"serve.gpu_memory_utilization must be a number in \(0, 1\]"),
    ('[tiny.serve]\nenforce_eager = "yes"\n', "serve.enforce_eager must be true or false"),
    ('[tiny.serve]\nextra_args = "--x"\n', "serve.extra_args must be a list of strings"),
    ('[tiny.serve.env]\nVLLM_X = 5\n', r"serve.env must be a table of strings \(write VAR = \"1\", quoted\)"),
    ('[tiny]\ndevice = "tpu"\n', "device must be \"cpu\" or \"cuda\", got 'tpu'"),
    ('[tiny]\ncell_timeout = -3\n', "cell_timeout must be >= 0 seconds"),
    ('[tiny.params.4]\nconcurrency = 1\n', "params.4 must be a table named \"all\" or a notebook's two-digit number"),
    ('[tiny]\nmodel = 5\n', "model must be a string, got 5"),
    ('[tiny]\nmin_gpus = -1\n', "min_gpus must be a whole number >= 0"),
    ('[tiny]\nsize_gb = "big"\n', "size_gb must be a number >= 0"),
    ('[tiny.serve]\ntensor_parallel_size = 1e9\n', "serve.tensor_parallel_size must be a whole number from 1 to 1024"),
    ('[tiny]\nport = true\n', "port must be an integer, got True"),  # int(True) was port 1
    ('[tiny]\nport = 8000.5\n', "port must be an integer, got 8000.5"),  # int() dropped the .5
    ('[tiny]\ncell_timeout = true\n', "cell_timeout must be a number of seconds, got True"),
    ('[tiny]\ncell_timeout = [60]\n', r"cell_timeout must be a number of seconds, got \[60\]"),
    ('[tiny.serve]\nmax_num_batched_tokens = 512\n',  # CPU prompts are not chunked: 2048-token ones could not run
     r"serve.max_num_batched_tokens \(512\) must be >= max_model_len \(2048\) on CPU"),
])
def test_a_profile_value_of_the_wrong_kind_is_one_line_naming_it(tmp_path, monkeypatch, toml, msg):
    """Caught when the profile loads, not minutes later as a failed vLLM start or a traceback."""
    (tmp_path / "lab.toml").write_text(toml)
    monkeypatch.setenv("LAB_PROFILES", str(tmp_path / "lab.toml"))
    monkeypatch.delenv("LAB_PORT", raising=False)  # the tests' own port would win over the file's
    with pytest.raises(LabError, match=f"^profile 'tiny': {msg}"):
        config.load("tiny")


@pytest.mark.parametrize("host", ["999.1.1.1", "http://x", "a b", "-bad.example", ""])
def test_a_host_that_is_no_address_is_refused_with_the_profile(monkeypatch, host):
    monkeypatch.setenv("LAB_HOST", host)
    if not host:  # an empty override is no override
        assert config.load("tiny").host == "127.0.0.1"
        return
    with pytest.raises(LabError, match=r"profile 'tiny': host .* is neither an IP address nor a hostname"):
        config.load("tiny")


@pytest.mark.parametrize("host", ["127.0.0.1", "0.0.0.0", "::1", "localhost", "gpu-01.lab.example"])
def test_addresses_and_hostnames_are_accepted(monkeypatch, host):
    monkeypatch.setenv("LAB_HOST", host)
    assert config.load("tiny").host == host


def test_whole_numbers_may_come_as_text_from_the_environment_or_as_floats_from_toml():
    body = checked_body("p", {"port": "8001", "cell_timeout": 60.0}, "127.0.0.1", 600)
    assert (body["port"], body["cell_timeout"], body["host"]) == (8001, 60, "127.0.0.1")
    assert checked_body("p", {}, "::1", 90)["cell_timeout"] == 90  # the defaults given


def test_a_hostname_of_digits_and_dots_is_an_address_or_nothing():
    assert checked_host("p", "10.0.0.7") == "10.0.0.7"
    with pytest.raises(LabError, match="profile 'p': host '10.0.0' is neither"):
        checked_host("p", "10.0.0")


def test_a_step_smaller_than_the_context_is_refused_only_where_prompts_are_not_chunked():
    small = {"max_num_batched_tokens": 512, "max_model_len": 2048}
    assert checked_body("g", {"device": "cuda", "serve": small}, "127.0.0.1", 600)["serve"] == small
    rechunked = {**small, "extra_args": ["--enable-chunked-prefill"]}  # the user's own choice, said in argv
    assert checked_body("c", {"serve": rechunked}, "127.0.0.1", 600)["serve"] == rechunked
    with pytest.raises(LabError, match=r"profile 'c': serve.max_num_batched_tokens \(512\) must be >= max_model_len"):
        checked_body("c", {"serve": small}, "127.0.0.1", 600)


@pytest.mark.parametrize("args", ['["--api-key", "s3cret-token"]', '["--port", "1", "--api-key=s3cret-token"]'])
def test_a_key_in_extra_args_is_refused_without_echoing_it(tmp_path, monkeypatch, args):
    """vLLM logs its argv and `ps` shows it: the key belongs in $LAB_API_KEY, and the refusal must not print it."""
    (tmp_path / "lab.toml").write_text(f"[tiny.serve]\nextra_args = {args}\n")
    monkeypatch.setenv("LAB_PROFILES", str(tmp_path / "lab.toml"))
    with pytest.raises(LabError, match=r"^profile .tiny.: serve.extra_args must not hold --api-key") as e:
        config.load("tiny")
    assert "$LAB_API_KEY" in str(e.value) and "s3cret" not in str(e.value)
