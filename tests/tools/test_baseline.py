"""Baselines for gating an upgrade: record -> compare passes -> a planted regression fails with the drift
table -> --update -> passes; every unusable file is exit 2 with a message and is never overwritten."""

import json
from pathlib import Path

import pytest
import torch
from safetensors import safe_open
from safetensors.torch import save_file
from transformers.models.bert import modeling_bert

from bertcheck.tools import cli
from bertcheck.tools.baseline import CHECKSUM_KEY, checksum

ROOT = Path(__file__).resolve().parents[2]


def _cli(capsys, *args):
    code = cli.main(list(args))
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture(scope="module")
def recorded(tmp_path_factory):
    """One baseline of random:tiny, recorded once; tests copy it before changing anything."""
    path = tmp_path_factory.mktemp("baseline") / "tiny.safetensors"
    assert cli.main(["baseline", "record", "--out", str(path), "--model", "random:tiny"]) == 0
    return path


@pytest.fixture
def baseline(recorded, tmp_path):
    copy = tmp_path / "tiny.safetensors"
    copy.write_bytes(recorded.read_bytes())
    return copy


@pytest.fixture
def tanh_gelu(monkeypatch):
    """A planted regression, as a transformers release could ship it: the intermediate's GELU is tanh."""

    def forward(self, hidden_states):
        return torch.nn.functional.gelu(self.dense(hidden_states), approximate="tanh")

    monkeypatch.setattr(modeling_bert.BertIntermediate, "forward", forward)


def _rewrite(path: Path, *, meta=None, tensors=None):
    with safe_open(str(path), framework="pt") as f:
        header = json.loads(f.metadata()["bertcheck"])
        values = {k: f.get_tensor(k) for k in f.keys()}
    if meta:
        meta(header)
    if tensors:
        tensors(values)
    text = json.dumps(header)  # a whole file, checksum and all, as a bertcheck run under those conditions writes
    save_file(values, str(path), metadata={"bertcheck": text, CHECKSUM_KEY: checksum(text, values)})


def test_the_upgrade_cycle_record_compare_regress_update(baseline, capsys, monkeypatch):
    code, out, _ = _cli(capsys, "baseline", "compare", str(baseline))
    assert code == 0, out
    assert "within tolerance" in out and "same: hidden states, activation names and shapes" in out

    def forward(self, hidden_states):
        return torch.nn.functional.gelu(self.dense(hidden_states), approximate="tanh")

    monkeypatch.setattr(modeling_bert.BertIntermediate, "forward", forward)
    code, out, _ = _cli(capsys, "baseline", "compare", str(baseline))
    assert code == 1
    assert "DRIFT" in out
    drifted = [line for line in out.splitlines() if line.startswith("  layer 0") and "mlp_post" in line]
    assert drifted, out  # the detail rows name layer 0's mlp_post, with its errors
    grid_row = next(line for line in out.splitlines() if line.startswith("  layer 0    "))
    assert "!" in grid_row
    embeddings = next(line for line in out.splitlines() if line.startswith("  embeddings "))
    assert "!" not in embeddings  # the embeddings are untouched by the regression, and say so

    code, out, _ = _cli(capsys, "baseline", "compare", str(baseline), "--update")
    assert code == 0 and f"updated {baseline}" in out
    code, out, _ = _cli(capsys, "baseline", "compare", str(baseline))
    assert code == 0, out


def test_the_pytest_option_compares_the_live_model_and_fails_with_the_drift_table(pytester, baseline):
    import torch  # noqa: F401 - pytester runs in-process: heavy imports first

    pytester.makepyfile(test_inner_baseline=(ROOT / "properties" / "test_baseline.py").read_text())
    pytester.makeini("[pytest]\naddopts = -p no:cacheprovider\n")
    pytester.runpytest("test_inner_baseline.py", "--bert-baseline", str(baseline)).assert_outcomes(passed=1)
    pytester.makeconftest(
        """
        import torch
        from transformers.models.bert import modeling_bert

        ORIGINAL = modeling_bert.BertIntermediate.forward

        def pytest_configure(config):  # the planted regression, undone when the inner run ends
            tanh_gelu = lambda self, h: torch.nn.functional.gelu(self.dense(h), approximate="tanh")  # noqa: E731
            modeling_bert.BertIntermediate.forward = tanh_gelu

        def pytest_unconfigure(config):
            modeling_bert.BertIntermediate.forward = ORIGINAL
        """
    )
    result = pytester.runpytest("test_inner_baseline.py", "--bert-baseline", str(baseline))
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["*Values (worst error as a share of the tolerance*", "*DRIFT: worst value error*"])
    assert any(line.startswith("  layer 0") and "mlp_post" in line for line in result.outlines), result.outlines


def test_without_the_option_the_baseline_property_is_deselected_not_skipped(pytester):
    pytester.makepyfile(test_inner_baseline=(ROOT / "properties" / "test_baseline.py").read_text())
    result = pytester.runpytest("-p", "no:cacheprovider")
    result.assert_outcomes(deselected=1)


def test_record_refuses_to_overwrite_without_update(baseline, capsys):
    before = baseline.read_bytes()
    code, _, err = _cli(capsys, "baseline", "record", "--out", str(baseline), "--model", "random:tiny")
    assert code == 2 and "exists; pass --update" in err
    assert baseline.read_bytes() == before


def test_a_baseline_holds_every_activation_and_the_metadata(baseline):
    with safe_open(str(baseline), framework="pt") as f:
        meta = json.loads(f.metadata()["bertcheck"])
        keys = set(f.keys())
    for field in (
        "transformers",
        "torch",
        "python",
        "platform",
        "model",
        "config_hash",
        "dtype",
        "attention",
        "probe_hash",
    ):
        assert meta[field], field
    assert meta["model"] == "random:tiny" and meta["dtype"] == "float32"
    for probe in ("single", "unicode", "padded-batch", "pair", "long"):
        assert meta["hidden_states"][probe] == 3
        assert {
            f"{probe}/blocks.1.{n}" for n in ("q", "z", "ln1_in", "resid_mid", "mlp_post", "ln2_in", "resid_post")
        } <= keys
        assert f"{probe}/embed.out" in keys and f"{probe}/input_ids" in keys


def _corrupt_truncated(path):
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])


def _flip_a_data_byte(path):
    """One bit of one tensor's data flipped, the header untouched: a disk or copy error."""
    data = bytearray(path.read_bytes())
    header = int.from_bytes(data[:8], "little")
    data[8 + header + (len(data) - 8 - header) // 2] ^= 0x10
    path.write_bytes(bytes(data))


def _edit_the_metadata_by_hand(path):
    """A field changed in the header, the checksum left as it was."""
    with safe_open(str(path), framework="pt") as f:
        header, values = dict(f.metadata()), {k: f.get_tensor(k) for k in f.keys()}
    header["bertcheck"] = header["bertcheck"].replace('"float32"', '"float64"', 1)
    save_file(values, str(path), metadata=header)


def _corrupt_garbage(path):
    path.write_bytes(b"\x00\x01not a baseline at all" * 10)


def _plain_safetensors(path):
    save_file({"x": torch.zeros(2)}, str(path))


def _nan(path):
    _rewrite(path, tensors=lambda t: t["single/blocks.0.mlp_post"].view(-1).__setitem__(0, float("nan")))


def _other_probes(path):
    _rewrite(path, meta=lambda m: m.__setitem__("probe_hash", "0123456789abcdef"))


def _other_config(path):
    _rewrite(path, meta=lambda m: m["config"].__setitem__("layer_norm_eps", 1e-5))


def _other_model(path):
    _rewrite(path, meta=lambda m: m.__setitem__("fingerprint", "0123456789abcdef"))


def _not_json(path):
    with safe_open(str(path), framework="pt") as f:
        values = {k: f.get_tensor(k) for k in f.keys()}
    save_file(values, str(path), metadata={"bertcheck": "{not json"})


@pytest.mark.parametrize(
    "damage, says",
    [
        (_corrupt_truncated, "not a readable safetensors file (truncated or corrupted?)"),
        (_corrupt_garbage, "not a readable safetensors file (truncated or corrupted?)"),
        (_flip_a_data_byte, "is corrupted: its contents do not match the checksum recorded with them"),
        (_edit_the_metadata_by_hand, "is corrupted: its contents do not match the checksum recorded with them"),
        (_plain_safetensors, "not a bertcheck baseline (no bertcheck metadata)"),
        (_not_json, "its bertcheck metadata is not JSON"),
        (_nan, "single/blocks.0.mlp_post holds NaN or infinity"),
        (_other_probes, "was recorded on another probe set"),
        (_other_config, "is from another config: layer_norm_eps 1e-05 recorded, 1e-12 live"),
        (_other_model, "was recorded on another checkpoint: fingerprint 0123456789abcdef (model 'random:tiny' then)"),
    ],
)
def test_an_unusable_baseline_exits_2_with_a_message_and_is_never_overwritten(baseline, capsys, damage, says):
    damage(baseline)
    before = baseline.read_bytes()
    model = ["--model", "random:tiny"] if damage is _other_model else []
    code, out, err = _cli(capsys, "baseline", "compare", str(baseline), "--update", *model)
    assert code == 2, out + err
    assert says in err and "Traceback" not in err
    assert baseline.read_bytes() == before


def test_a_baseline_from_before_checksums_is_compared_with_a_note_that_damage_would_look_like_drift(baseline, capsys):
    with safe_open(str(baseline), framework="pt") as f:
        header, values = dict(f.metadata()), {k: f.get_tensor(k) for k in f.keys()}
    save_file(values, str(baseline), metadata={"bertcheck": header["bertcheck"]})  # as bertcheck wrote it before
    code, out, err = _cli(capsys, "baseline", "compare", str(baseline))
    assert code == 0, out + err
    assert "has no checksum (recorded by an older bertcheck): damage inside it cannot be told from drift" in err


KILLED_WHILE_WRITING = """
import sys, time
import safetensors.torch
from bertcheck.tools import cli

def save_file(tensors, path, metadata=None):
    with open(path, "wb") as f:
        f.write(b"half a baseline")
        f.flush()
    print("WRITING", flush=True)
    time.sleep(600)

safetensors.torch.save_file = save_file
sys.exit(cli.main(["baseline", "record", "--model", "random:tiny", "--out", sys.argv[1], "--update"]))
"""


def test_a_write_killed_midway_leaves_the_baseline_whole_and_its_temporary_file_is_swept_by_the_next(
    baseline, capsys, tmp_path
):
    import signal
    import subprocess
    import sys

    before = baseline.read_bytes()
    proc = subprocess.Popen(
        [sys.executable, "-c", KILLED_WHILE_WRITING, str(baseline)], stdout=subprocess.PIPE, text=True
    )
    assert proc.stdout.readline().strip() == "WRITING"
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    left = list(baseline.parent.glob(f".{baseline.name}.*.tmp"))
    assert len(left) == 1 and baseline.read_bytes() == before  # what SIGKILL leaves: the old file whole
    code, out, err = _cli(capsys, "baseline", "record", "--model", "random:tiny", "--out", str(baseline), "--update")
    assert code == 0, out + err
    assert list(baseline.parent.glob(f".{baseline.name}.*.tmp")) == []


def test_a_missing_baseline_file_exits_2(capsys, tmp_path):
    code, _, err = _cli(capsys, "baseline", "compare", str(tmp_path / "nope.safetensors"))
    assert code == 2 and "no such file" in err


# ---- walk ---------------------------------------------------------------------------------------------


def test_walk_reports_each_step_of_each_layer(capsys, tiny):
    code, out, _ = _cli(capsys, "walk", "--model", "random:tiny")
    assert code == 0, out
    assert "ids:      [101, 2023, 2003, 1037, 3231, 6251, 102]" in out
    for step in (
        "embeddings",
        "layer 0  self-attention",
        "layer 0  first add & norm",
        f"layer 1  intermediate (width {tiny.config.intermediate_size})",
        "layer 1  second add & norm",
    ):
        assert step in out, step
    assert "every step holds" in out


def test_walk_marks_the_steps_a_regression_breaks(capsys, tanh_gelu):
    code, out, _ = _cli(capsys, "walk", "--model", "random:tiny")
    assert code == 1
    marked = [line for line in out.splitlines() if "<--" in line]
    assert marked and "intermediate" in marked[0] and "differs from the reference" in marked[0]


def test_walk_plots_errors_and_layernorm_statistics(capsys, tmp_path):
    pytest.importorskip("matplotlib", reason="the plot extra is not installed")
    png = tmp_path / "walk.png"
    code, out, _ = _cli(capsys, "walk", "--model", "random:tiny", "--plot", str(png))
    assert code == 0, out
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and png.stat().st_size > 10_000


# ---- where a baseline goes: refused before recording, never half-written ----------------------------


@pytest.fixture
def no_load(monkeypatch):
    """Fail any model load: a refusal must come before the recording, not after it."""
    from bertcheck.subjects.subject import Bert

    def load(cls, model_name, cache_dir=None):
        raise AssertionError("the model was loaded before the place to write was checked")

    monkeypatch.setattr(Bert, "load", classmethod(load))


@pytest.mark.parametrize(
    "where, update, says",
    [
        (
            lambda tmp: tmp / "a-file" / "b.safetensors",
            False,
            "cannot write {out}: {out.parent} is a file, not a folder",
        ),
        (lambda tmp: tmp / "a-directory", True, "{out} is a directory; give the baseline file's path"),
        (lambda tmp: Path("/proc/bertcheck-nowhere/b.safetensors"), False, "cannot write {out}: "),
    ],
    ids=["under a file", "onto a directory with --update", "an unwritable place"],
)
def test_record_refuses_a_place_it_cannot_write_before_loading_the_model(
    capsys, tmp_path, no_load, where, update, says
):
    (tmp_path / "a-file").write_text("not a folder")
    (tmp_path / "a-directory").mkdir()
    out = where(tmp_path)
    code, _, err = _cli(
        capsys, "baseline", "record", "--out", str(out), "--model", "random:tiny", *(["--update"] if update else [])
    )
    assert code == 2, err
    assert err.startswith("bertcheck baseline: " + says.format(out=out)) and "Traceback" not in err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a-directory", "a-file"] and not list(
        (tmp_path / "a-directory").iterdir()
    )


def test_a_second_record_that_finishes_later_refuses_instead_of_overwriting(tmp_path, monkeypatch):
    from bertcheck.tools import baseline as baselines
    from bertcheck.tools.baseline import BaselineError, record
    from bertcheck.subjects.subject import Bert

    out = tmp_path / "new.safetensors"
    observe = baselines.observe

    def slower(*args, **kwargs):  # another run writes the file while this one is recording
        out.write_bytes(b"the other run's baseline")
        return observe(*args, **kwargs)

    monkeypatch.setattr(baselines, "observe", slower)
    with pytest.raises(BaselineError, match="was created by someone else while this was recording; pass --update"):
        record(Bert.load("random:tiny"), out)
    assert out.read_bytes() == b"the other run's baseline"
    assert [p.name for p in tmp_path.iterdir()] == ["new.safetensors"]  # no temporary file left behind


@pytest.mark.parametrize(
    "edit, says",
    [
        (lambda m: m.__setitem__("model", 3), "metadata field 'model' is int 3, not str"),
        (lambda m: m.__setitem__("config", ["a"]), "metadata field 'config' is list"),
        (lambda m: m.__setitem__("state_dict", {"x": "shape"}), "metadata 'state_dict' or 'hidden_states' holds other"),
        (
            lambda m: m["hidden_states"].__setitem__("single", "3"),
            "metadata 'state_dict' or 'hidden_states' holds other",
        ),
        (lambda m: m.__setitem__("fingerprint", 12), "metadata field 'fingerprint' is 12, not a hash"),
    ],
    ids=["model", "config", "state_dict", "hidden_states", "fingerprint"],
)
def test_metadata_edited_into_other_types_exits_2_naming_the_field(baseline, capsys, edit, says):
    _rewrite(baseline, meta=edit)
    code, out, err = _cli(capsys, "baseline", "compare", str(baseline))
    assert code == 2, out + err
    assert says in err and "Traceback" not in err


def test_a_baseline_follows_the_checkpoint_not_the_string_that_named_it(tmp_path, capsys, monkeypatch, tiny):
    import checkpoints

    first, second = tmp_path / "first", tmp_path / "second"
    checkpoints.save(first / "plain", tiny)
    checkpoints.save(
        second / "plain",
        tiny,
        config={"layer_norm_eps": 1e-12},
        rename=lambda k: k,
        extra={"embeddings.LayerNorm.bias": torch.zeros(64)},
    )
    monkeypatch.chdir(first)
    code, _, err = _cli(capsys, "baseline", "record", "--out", str(tmp_path / "b.safetensors"), "--model", "./plain")
    assert code == 0, err
    code, out, err = _cli(
        capsys, "baseline", "compare", str(tmp_path / "b.safetensors"), "--model", str(first / "plain")
    )
    assert code == 0, out + err
    assert f"recorded as './plain', the same checkpoint as '{first / 'plain'}' here" in out
    monkeypatch.chdir(second)  # ./plain here is another checkpoint
    code, _, err = _cli(capsys, "baseline", "compare", str(tmp_path / "b.safetensors"))
    assert code == 2
    assert "was recorded on another checkpoint: fingerprint " in err and "name the recorded one with --model" in err


def test_a_model_with_one_token_type_records_and_compares_without_the_pair_probe(tmp_path, capsys, tiny):
    import checkpoints

    path = checkpoints.save(
        tmp_path / "one-type",
        tiny,
        config={"type_vocab_size": 1},
        extra={"embeddings.token_type_embeddings.weight": torch.randn(1, 64)},
    )
    out = tmp_path / "b.safetensors"
    code, _, err = _cli(capsys, "baseline", "record", "--out", str(out), "--model", str(path))
    assert code == 0, err
    with safe_open(str(out), framework="pt") as f:
        assert sorted(json.loads(f.metadata()["bertcheck"])["hidden_states"]) == [
            "long",
            "padded-batch",
            "single",
            "unicode",
        ]
    code, report, err = _cli(capsys, "baseline", "compare", str(out))
    assert code == 0, report + err


def test_a_release_that_breaks_one_input_form_fails_the_compare_naming_the_form(baseline, capsys, monkeypatch):
    # The README's upgrade recipe quotes this run: a release whose boolean 2D mask is inverted, the plain
    # call (the tokenizer's int64 mask) bit for bit as it was.
    import copy

    import mutants
    from bertcheck.subjects.subject import Bert

    stock = Bert.load.__func__

    def load(cls, model_name, cache_dir=None):
        bert = stock(cls, model_name, cache_dir)
        model = copy.deepcopy(bert.model())  # the worker's cached model stays unbroken
        mutants.FORM_BREAKS["mask-bool"][1](model)
        return Bert(bert.model_name, model, bert.tokenizer, source=bert.source)

    monkeypatch.setattr(Bert, "load", classmethod(load))
    code, out, _ = _cli(capsys, "baseline", "compare", str(baseline))
    print(out)
    assert code == 1, out
    assert "worst value error 0 of the tolerance" in out  # every activation of the plain call exact
    cells = next(line for line in out.splitlines() if "form-mask-bool" in line)
    assert "form-mask-bool " in cells and "!" in cells.split("form-mask-bool ")[1].split()[0], cells
    assert out.rstrip().endswith("input forms that drifted or newly raise: form-mask-bool"), out
