"""Per-layer baselines: record every activation on a fixed probe set, compare a live model against it.

A baseline is one safetensors file (never pickle): for each probe, its token ids and every vocabulary
activation of every layer plus the hidden states, from one hooked forward; each input form of the API
(`bertcheck.properties.input_forms`) on the padded and pair probes, its last hidden state, or why it has none; and,
in the header, JSON metadata: bertcheck, transformers, torch, python and platform versions, the model
name, the config (and a hash of its architecture fields), dtype, attention implementation, the probe set
and its hash, the state_dict keys and shapes, and each form's status.

Compare reports structure first (hidden-state count, activation names and shapes, state_dict keys and
shapes, config fields), then values: per layer and activation, max and mean absolute and relative
error and the share of elements outside the tolerance table's tolerance; then the input forms: one that
newly raises or drifts is drift, one the new release lacks on purpose (`Form.lacks`) is listed as removed.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import platform
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import torch

from bertcheck.subjects.capture import capture
from bertcheck.properties.input_forms import FORMS, form_outputs, member_lacks, one_line
from bertcheck.inputs.cases import Case
from bertcheck.spec.compare import differences
from bertcheck.spec.names import CAPTURED_LAYER_NAMES, embed_names
from bertcheck.subjects.subject import Bert
from bertcheck.spec.tolerances import Tolerance, tolerances_for

FORMAT = "bertcheck-baseline/1"

# The probe set: fixed, small, and covering what an upgrade can break. Changing it changes its hash,
# and a baseline recorded with another probe set is refused rather than compared.
_LONG = " ".join(["the river bank was steep and the money in the bank was safe"] * 50)  # ~650 tokens: truncated
PROBES: dict[str, tuple] = {
    "single": ("this is a test sentence",),
    "unicode": ("Café naïve — 日本語 😀 tokenization!",),
    "padded-batch": ("a", "the quick brown fox jumps over the lazy dog", "what is the time?"),
    "pair": (("where is the bank?", "the bank is by the river."),),
    "long": (_LONG,),
}
# The probes each input form is run on: padding and token types, what the forms change.
FORM_PROBES = ("padded-batch", "pair")
FORM_KEY = "form:"  # a form's tensors: ``{probe}/form:{key}``, and ``{probe}/form:{key}.attentions``
# The long probe is stored at its first and last 16 tokens only (every activation there depends on all
# 512 through attention; positions 496-511 exercise the end of the position table): all 512 tokens of
# every activation of bert-base would be ~360 MB.
LONG_TOKENS = 16

# Config fields that define the function a BERT computes: a baseline with other values is another model.
ARCHITECTURE = (
    "vocab_size",
    "hidden_size",
    "num_hidden_layers",
    "num_attention_heads",
    "intermediate_size",
    "hidden_act",
    "max_position_embeddings",
    "type_vocab_size",
    "layer_norm_eps",
    "position_embedding_type",
    "pad_token_id",
)


# Metadata fields compare reads, with their JSON types: anything else is an edited or damaged file.
_SCHEMA = {
    "model": str,
    "config": dict,
    "config_hash": str,
    "dtype": str,
    "attention": str,
    "probe_hash": str,
    "state_dict": dict,
    "hidden_states": dict,
}


class BaselineError(ValueError):
    """The baseline file cannot be used: what is wrong with it, and what to do."""


# The safetensors header key of a baseline's checksum: sha256 of its metadata text and every tensor
# (name, dtype, shape, bytes). Damage inside the tensor data is then "corrupted", never model drift.
CHECKSUM_KEY = "bertcheck-sha256"


def checksum(meta_text: str, tensors: dict[str, torch.Tensor]) -> str:
    """The checksum of a baseline's metadata text and tensors (`CHECKSUM_KEY`)."""
    digest = hashlib.sha256(meta_text.encode("utf-8"))
    for key in sorted(tensors):
        t = tensors[key].detach().reshape(-1).contiguous()
        digest.update(f"\n{key}|{t.dtype}|{tuple(tensors[key].shape)}\n".encode("utf-8"))
        digest.update(t.view(torch.uint8).cpu().numpy().data)
    return digest.hexdigest()


def _hash(value) -> str:
    return hashlib.sha256(json.dumps(value, sort_keys=True, default=str).encode()).hexdigest()[:16]


def probe_hash() -> str:
    return _hash({"probes": {k: list(v) for k, v in PROBES.items()}, "long_tokens": LONG_TOKENS})


# Where a transformers version leaves a field out, the value it means: 5.x BertConfig dropped
# position_embedding_type (BERT's positions are absolute), 4.33 writes "absolute".
_IMPLIED = {"position_embedding_type": "absolute"}


def architecture(config) -> dict:
    values = {key: getattr(config, key, None) for key in ARCHITECTURE}
    return {key: _IMPLIED.get(key) if value is None else value for key, value in values.items()}


def _tokens(name: str, mask: torch.Tensor) -> torch.Tensor | None:
    """Token positions stored for probe `name` (None: all)."""
    if name != "long":
        return None
    T = mask.shape[1]
    d = mask.device
    return torch.cat(
        [torch.arange(0, min(LONG_TOKENS, T), device=d), torch.arange(max(T - LONG_TOKENS, LONG_TOKENS), T, device=d)]
    )


def observe(
    bert: Bert, dtype: torch.dtype, attention: str | None, progress=None, device: str = "cpu"
) -> tuple[dict[str, torch.Tensor], dict[str, int], dict[str, dict]]:
    """Every stored tensor, by ``{probe}/{name}`` (ids, mask, token types, each activation, each input
    form's last hidden state), the number of hidden states of each probe (the states themselves are
    ``embed.out`` and each ``resid_post``, already stored), and each form's status (`_forms`). The model
    runs on `device`; what is stored is on the CPU."""
    with bert.attention(attention, dtype, device) as model:
        tensors, counts = _observe(bert, model, dtype, progress, device)
        forms = _forms(bert, model, dtype, attention or "eager", device, tensors)
    return tensors, counts, forms


def _forms(bert: Bert, model, dtype: torch.dtype, attention: str, device: str, tensors: dict) -> dict[str, dict]:
    """Each input form on `FORM_PROBES`: its last hidden state into `tensors`, and its status, one of
    {"status": "recorded"}, {"status": "absent", "why": ...} (this release lacks it on `attention`) or
    {"status": "raised", "error": ...} (HF's model raised on it)."""
    forms = {}
    probes = [p for p in FORM_PROBES if not bert.unsupported(Case(PROBES[p]))]
    for key, form in FORMS.items():
        why = form.lacks(attention) or member_lacks(form, bert.config)
        if why:
            forms[key] = {"status": "absent", "why": why}
            continue
        forms[key] = {"status": "recorded"}
        for probe in probes:
            case = Case(PROBES[probe], dtype=dtype, device=device)
            try:
                outputs = form_outputs(form, bert, model, bert.encode(case), case)
            except Exception as err:  # noqa: BLE001 - HF's model raising on a valid form is what is recorded
                forms[key] = {"status": "raised", "error": one_line(err)}
                break
            for what, value in outputs.items():
                tensors[f"{probe}/{FORM_KEY}{key}" + (f".{what}" if what else "")] = value.cpu().contiguous()
    return forms


def _observe(
    bert: Bert, model, dtype: torch.dtype, progress, device: str
) -> tuple[dict[str, torch.Tensor], dict[str, int]]:
    tensors: dict[str, torch.Tensor] = {}
    counts: dict[str, int] = {}
    for probe, texts in PROBES.items():
        if bert.unsupported(Case(texts)):  # the pair probe of a model with one token type: not an input it takes
            continue
        inputs = bert.encode(Case(texts, dtype=dtype, device=device))
        acts = capture(model, **inputs)
        keep = _tokens(probe, inputs["attention_mask"])
        counts[probe] = len(acts.hidden_states)
        for key, value in inputs.items():
            tensors[f"{probe}/{key}"] = value.cpu()
        for name, value in acts.items():
            if name.endswith(".resid_pre"):  # the same tensor as the previous layer's resid_post (or embed.out)
                continue
            if value.shape[0] == 1 and inputs["input_ids"].shape[0] > 1:  # HF's (1, T, H) position embeddings
                value = value.expand(inputs["input_ids"].shape[0], *value.shape[1:])
            if keep is not None:
                value = value[:, keep]
            tensors[f"{probe}/{name}"] = value.detach().cpu().contiguous()
        if progress is not None:
            progress.update(1)
    return tensors, counts


def metadata(bert: Bert, dtype: torch.dtype, attention: str) -> dict:
    import transformers

    import bertcheck

    model = bert.model(dtype, "cpu")  # the state dict does not depend on the attention implementation
    return {
        "format": FORMAT,
        "bertcheck": bertcheck.__version__,
        "transformers": transformers.__version__,
        "torch": torch.__version__,
        "python": platform.python_version(),
        "platform": platform.platform(),
        "model": bert.model_name,
        # The checkpoint's identity (its files, or a random model's recipe): compared, not the name.
        "fingerprint": bert.source.fingerprint() if bert.source is not None else None,
        "config": json.loads(json.dumps(bert.config.to_dict(), default=str)),
        "config_hash": _hash(architecture(bert.config)),
        "dtype": str(dtype).removeprefix("torch."),
        "attention": attention,
        "probes": {k: list(v) for k, v in PROBES.items()},
        "probe_hash": probe_hash(),
        "state_dict": {k: list(v.shape) for k, v in model.state_dict().items()},
    }


def _progress(total: int, what: str):
    from tqdm.auto import tqdm

    return tqdm(total=total, desc=what, unit="probe", file=sys.stderr, disable=None)  # disable=None: off when not a tty


def record(
    bert: Bert,
    out: Path,
    *,
    dtype=torch.float32,
    attention: str | None = None,
    update: bool = False,
    device: str = "cpu",
) -> dict:
    """Write the baseline of `bert` to `out` (atomically). Refuses to overwrite unless `update`, and
    refuses a place it cannot write before spending any time recording."""
    out = Path(out)
    ensure_writable(out, update=update)
    attention = attention or getattr(bert.model(dtype).config, "_attn_implementation", None) or "eager"
    meta = metadata(bert, dtype, attention)
    with _progress(len(PROBES), f"recording {bert.model_name}") as bar:
        tensors, meta["hidden_states"], meta["forms"] = observe(bert, dtype, attention, bar, device)
    _save(out, meta, tensors, update=update)
    return meta


def ensure_writable(out: Path, *, update: bool) -> None:
    """`BaselineError` now, not after the recording, when `out` cannot be written: a directory, a path
    under a file, a place without write access, or (without `update`) a file that exists."""
    out = Path(out)
    if out.is_dir():
        raise BaselineError(
            f"{out} is a directory; give the baseline file's path, such as {out / 'baseline.safetensors'}"
        )
    if out.exists() and not update:
        raise BaselineError(f"{out} exists; pass --update to overwrite it")
    _reserve(out).unlink()


def _reserve(out: Path) -> Path:
    """A fresh temporary file beside `out` (creating its folders): the real test of writing there. Its
    name holds this process's id, so the next write sweeps what a killed one left (`_sweep`)."""
    above = next((p for p in out.parents if p.exists()), None)
    if above is not None and not above.is_dir():
        raise BaselineError(f"cannot write {out}: {above} is a file, not a folder")
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        _sweep(out)
        fd, tmp = tempfile.mkstemp(dir=out.parent, prefix=f".{out.name}.{os.getpid()}.", suffix=".tmp")
    except OSError as err:
        raise BaselineError(f"cannot write {out}: {err.strerror or err} ({err.filename or out.parent})") from None
    os.close(fd)
    return Path(tmp)


def _sweep(out: Path) -> None:
    """Remove the temporary files of `out` that a process no longer running left (SIGKILL mid-write)."""
    for tmp in out.parent.glob(f".{out.name}.*.tmp"):
        pid = tmp.name[len(out.name) + 2 :].split(".", 1)[0]
        if not pid.isdigit():
            continue
        try:
            os.kill(int(pid), 0)
        except ProcessLookupError:
            tmp.unlink(missing_ok=True)
        except OSError:  # running, as another user: not ours to remove
            pass


def _save(out: Path, meta: dict, tensors: dict[str, torch.Tensor], *, update: bool) -> None:
    """Write whole or not at all: into a temporary file beside `out`, then into place. Without `update`
    the file appears by a hard link, which fails if another run created `out` meanwhile."""
    from safetensors.torch import save_file

    tmp = _reserve(out)
    try:
        text = json.dumps(meta)
        save_file(tensors, str(tmp), metadata={"bertcheck": text, CHECKSUM_KEY: checksum(text, tensors)})
        os.chmod(tmp, 0o644)  # mkstemp makes it private; a baseline is meant to be shared
        if update:
            os.replace(tmp, out)  # the old file stays until the new one is whole
        else:
            os.link(tmp, out)
    except FileExistsError:
        raise BaselineError(
            f"{out} was created by someone else while this was recording; pass --update to overwrite it"
        ) from None
    except OSError as err:
        raise BaselineError(f"cannot write {out}: {err.strerror or err}") from None
    finally:
        tmp.unlink(missing_ok=True)


def update(comparison: "Comparison", bert: Bert) -> dict:
    """Rewrite the compared baseline from what the comparison observed on the live model (no second
    pass over the probe set): same dtype and attention implementation, today's versions and config."""
    meta = comparison.baseline.meta
    fresh = metadata(bert, getattr(torch, meta["dtype"]), meta["attention"])
    fresh["hidden_states"] = comparison.live_counts
    fresh["forms"] = comparison.live_forms
    _save(comparison.baseline.path, fresh, comparison.live_tensors, update=True)
    return fresh


@dataclass
class Baseline:
    path: Path
    meta: dict
    tensors: dict[str, torch.Tensor]
    notes: list[str] = field(default_factory=list)  # what a user must know of the file (no checksum)


def load(path: Path) -> Baseline:
    """Read and validate a baseline; `BaselineError` saying what is wrong, never a raw library error."""
    from safetensors import safe_open

    path = Path(path)
    if not path.is_file():
        raise BaselineError(f"{path}: no such file")
    try:
        with safe_open(str(path), framework="pt") as f:
            header = f.metadata() or {}
            tensors = {key: f.get_tensor(key) for key in f.keys()}
    except Exception as err:  # noqa: BLE001 - safetensors raises its own error types, and OSError, for damage
        raise BaselineError(f"{path} is not a readable safetensors file (truncated or corrupted?): {err}") from None
    if "bertcheck" not in header:
        raise BaselineError(f"{path} is a safetensors file but not a bertcheck baseline (no bertcheck metadata)")
    notes = []
    if CHECKSUM_KEY not in header:
        notes.append(
            f"{path} has no checksum (recorded by an older bertcheck): damage inside it cannot be told from "
            "drift; re-record it to add one"
        )
    elif checksum(header["bertcheck"], tensors) != header[CHECKSUM_KEY]:
        raise BaselineError(
            f"{path} is corrupted: its contents do not match the checksum recorded with them "
            f"(sha256 {header[CHECKSUM_KEY][:16]}...); the file changed after it was written: "
            "restore it or re-record it"
        )
    try:
        meta = json.loads(header["bertcheck"])
    except json.JSONDecodeError as err:
        raise BaselineError(f"{path}: its bertcheck metadata is not JSON ({err})") from None
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        raise BaselineError(
            f"{path}: format {meta.get('format') if isinstance(meta, dict) else meta!r}, expected {FORMAT}"
        )
    missing = [k for k in _SCHEMA if k not in meta]
    if missing:
        raise BaselineError(f"{path}: metadata lacks {missing}")
    for key, kind in _SCHEMA.items():
        if not isinstance(meta[key], kind):
            raise BaselineError(
                f"{path}: metadata field {key!r} is {type(meta[key]).__name__} {meta[key]!r:.60}, not "
                f"{kind.__name__}: the file was edited or damaged (re-record it)"
            )
    shapes, counts = meta["state_dict"].values(), meta["hidden_states"].values()
    if not all(isinstance(s, list) and all(isinstance(n, int) for n in s) for s in shapes) or not all(
        isinstance(n, int) for n in counts
    ):
        raise BaselineError(
            f"{path}: metadata 'state_dict' or 'hidden_states' holds other than shapes and counts (re-record it)"
        )
    if not isinstance(meta.get("fingerprint"), (str, type(None))):
        raise BaselineError(
            f"{path}: metadata field 'fingerprint' is {meta['fingerprint']!r:.60}, not a hash (re-record it)"
        )
    forms = meta.get("forms", {})  # absent from a baseline an older bertcheck recorded
    if not isinstance(forms, dict) or not all(
        isinstance(v, dict) and v.get("status") in ("recorded", "absent", "raised") for v in forms.values()
    ):
        raise BaselineError(f"{path}: metadata 'forms' holds other than input-form statuses (re-record it)")
    for key, value in tensors.items():
        if value.is_floating_point() and not bool(torch.isfinite(value).all()):
            raise BaselineError(f"{path}: {key} holds NaN or infinity; a baseline must be finite (re-record it)")
    if meta["probe_hash"] != probe_hash():
        raise BaselineError(
            f"{path} was recorded on another probe set (hash {meta['probe_hash']}, this bertcheck's is "
            f"{probe_hash()}); re-record it with this bertcheck on the old transformers"
        )
    return Baseline(path, meta, tensors, notes)


# ---- comparing ------------------------------------------------------------------------------------


@dataclass
class Row:
    layer: str  # "embeddings", "layer 3", "hidden states"
    name: str
    max_abs: float
    mean_abs: float
    max_rel: float
    mean_rel: float
    mismatched: float  # share of elements outside the tolerance
    ratio: float  # worst |diff| / allowed; above 1 is drift


@dataclass
class Comparison:
    baseline: Baseline
    live: dict
    live_tensors: dict[str, torch.Tensor] = field(default_factory=dict)  # what the live model gave: `update` saves it
    live_counts: dict[str, int] = field(default_factory=dict)
    live_forms: dict[str, dict] = field(default_factory=dict)
    form_rows: list[Row] = field(default_factory=list)  # each input form's drift, one row per form
    newly_raises: dict[str, str] = field(default_factory=dict)  # form key -> what it raises now
    removed: dict[str, str] = field(default_factory=dict)  # form key -> why the live release lacks it
    structure: list[str] = field(default_factory=list)  # differences, each a line
    notes: list[str] = field(default_factory=list)  # differences that are not drift (versions, platform)
    rows: list[Row] = field(default_factory=list)
    tolerance: Tolerance | None = None

    @property
    def drifted(self) -> bool:
        rows = [*self.rows, *self.form_rows]
        return bool(self.structure) or bool(self.newly_raises) or any(r.ratio > 1 for r in rows)

    def report(self, verbose: bool = False) -> str:
        meta, live = self.baseline.meta, self.live
        lines = [
            f"bertcheck baseline compare: {self.baseline.path}",
            f"  recorded: transformers {meta.get('transformers')}, torch {meta.get('torch')}, "
            f"python {meta.get('python')}, {meta.get('platform')}",
            f"  live:     transformers {live['transformers']}, torch {live['torch']}, "
            f"python {live['python']}, {live['platform']}",
            f"  model {meta['model']}, {meta['dtype']}, attention {meta['attention']}; "
            f"tolerance rtol={self.tolerance.rtol:g} atol={self.tolerance.atol:g}",
            "",
            "Structure:",
        ]
        lines += [f"  {line}" for line in self.structure] or [
            "  same: hidden states, activation names and shapes, state_dict keys and shapes, config"
        ]
        lines += [f"  note: {line}" for line in self.notes]
        lines += ["", "Values (worst error as a share of the tolerance, per layer and activation; 1 = the limit):"]
        lines += self._grid()
        shown = self.rows if verbose else [r for r in self.rows if r.ratio > 1]
        if shown:
            lines += [
                "",
                "  where          activation              max abs    mean abs   max rel    mean rel   outside tol",
            ]
            for r in shown:
                lines.append(
                    f"  {r.layer:<14} {r.name:<22} {r.max_abs:<10.3g} {r.mean_abs:<10.3g} {r.max_rel:<10.3g} "
                    f"{r.mean_rel:<10.3g} {100 * r.mismatched:.2f}%"
                )
        lines += self._forms()
        worst = max((r.ratio for r in self.rows), default=0.0)
        verdict = "DRIFT" if self.drifted else "within tolerance"
        broken = [f"form-{key}" for key in [*(r.name for r in self.form_rows if r.ratio > 1), *self.newly_raises]]
        lines += [
            "",
            f"{verdict}: worst value error {worst:.3g} of the tolerance over {len(self.rows)} layer x activation cells"
            + (f"; {len(self.structure)} structural difference(s)" if self.structure else "")
            + (f"; input forms that drifted or newly raise: {', '.join(broken)}" if broken else "")
            + (f"; input forms removed: {', '.join(f'form-{key}' for key in self.removed)}" if self.removed else ""),
        ]
        return "\n".join(lines)

    def _forms(self) -> list[str]:
        """The input forms: each compared one's worst share of the tolerance (! past 1), then what newly
        raises, and what the live release removed."""
        if not (self.form_rows or self.newly_raises or self.removed):
            return []
        lines = ["", "Input forms (last hidden state on the padded and pair probes, as a share of the tolerance):"]
        cells = [
            f"form-{r.name} " + ("inf" if math.isinf(r.ratio) else f"{r.ratio:.2g}") + ("!" if r.ratio > 1 else "")
            for r in self.form_rows
        ]
        for start in range(0, len(cells), 4):
            lines.append("  " + "   ".join(cells[start : start + 4]))
        lines += [
            f"  DRIFT form-{r.name}: max abs {r.max_abs:.3g}, mean abs {r.mean_abs:.3g}, max rel {r.max_rel:.3g}, "
            f"{100 * r.mismatched:.2f}% outside the tolerance"
            for r in self.form_rows
            if r.ratio > 1
        ]
        lines += [f"  DRIFT form-{key} newly raises {error}" for key, error in self.newly_raises.items()]
        lines += [f"  removed: form-{key}: {why}" for key, why in self.removed.items()]
        return lines

    def _grid(self) -> list[str]:
        """Two grids, each cell the worst share of the tolerance (! past 1): the embeddings, then
        layers (rows) by activation (columns)."""
        cells = {(r.layer, r.name): r.ratio for r in self.rows}
        out = []
        for rows in (
            [p for p in dict.fromkeys(r.layer for r in self.rows) if p == "embeddings"],
            [p for p in dict.fromkeys(r.layer for r in self.rows) if p != "embeddings"],
        ):
            names = list(dict.fromkeys(r.name for r in self.rows if r.layer in rows))
            if not names:
                continue
            width = [max(len(n), 5) for n in names]
            out.append("  " + "".ljust(11) + " ".join(f"{n:>{w}}" for n, w in zip(names, width)))
            for place in rows:
                texts = []
                for n, w in zip(names, width):
                    v = cells.get((place, n))
                    text = "" if v is None else ("inf" if math.isinf(v) else f"{v:.2g}") + ("!" if v > 1 else "")
                    texts.append(f"{text:>{w}}")
                out.append("  " + place.ljust(11) + " ".join(texts))
        return out


def _split(key: str) -> tuple[str, str]:
    """``blocks.3.ln1_in`` -> ("layer 3", "ln1_in"); ``embed.out`` -> ("embeddings", "embed.out")."""
    if key.startswith("blocks."):
        _, i, name = key.split(".", 2)
        return f"layer {i}", name
    return "embeddings", key


def compare(baseline: Baseline, bert: Bert, device: str = "cpu") -> Comparison:
    """The live `bert` against `baseline`: structure, then values. `BaselineError` when they are not
    comparable at all (another model, config or attention implementation)."""
    dtype = _comparable(baseline, bert)
    result = Comparison(baseline, _live_meta(), tolerance=tolerances_for(dtype).values)
    result.notes += _provenance(baseline, bert, result.live)
    live, live_counts, live_forms = observe(bert, dtype, baseline.meta["attention"], device=device)
    result.live_tensors, result.live_counts, result.live_forms = live, live_counts, live_forms
    live_state = {k: list(v.shape) for k, v in bert.model(dtype, "cpu").state_dict().items()}
    result.structure += _structure(baseline, live_state, live, live_counts)
    result.rows = _rows(baseline, live, result.tolerance, bert.config.num_hidden_layers)
    _compare_forms(result, baseline, live, live_forms)
    return result


def _compare_forms(result: Comparison, baseline: Baseline, live: dict, live_forms: dict[str, dict]) -> None:
    """Each input form, recorded against live: drift where a recorded form drifts or newly raises,
    removed where the live release lacks it on purpose, a note otherwise."""
    recorded = baseline.meta.get("forms")
    if recorded is None:
        result.notes.append(
            "no input forms in this baseline (an older bertcheck recorded it): re-record it to gate them"
        )
        return
    for key in dict.fromkeys([*recorded, *live_forms]):
        old = recorded.get(key, {"status": "absent", "why": "unknown to the bertcheck that recorded it"})
        new = live_forms.get(key, {"status": "absent", "why": "unknown to this bertcheck"})
        said = f"form-{key}"
        if old["status"] == "recorded" and new["status"] == "absent":
            result.removed[key] = new["why"]
        elif old["status"] == "recorded" and new["status"] == "raised":
            result.newly_raises[key] = new["error"]
        elif old["status"] == "recorded":
            result.form_rows.append(_form_row(baseline, live, key, result.tolerance))
        elif old["status"] == "raised" and new["status"] == "raised":
            result.notes.append(f"{said} raises, as it did when recorded: {new['error']}")
        elif old["status"] == "raised":
            result.notes.append(f"{said} raised when recorded ({old['error']}); accepted now, nothing to compare")
        elif new["status"] != "absent":
            result.notes.append(f"{said} is new here (the recorded release lacked it): nothing to compare it with")


def _form_row(baseline: Baseline, live: dict, key: str, tolerance: Tolerance) -> Row:
    """One form's drift over the real tokens of every probe it was recorded on."""
    parts = []
    for name, old in baseline.tensors.items():
        probe, what = name.split("/", 1)
        if what != FORM_KEY + key and not what.startswith(f"{FORM_KEY}{key}."):
            continue
        new = live.get(name)
        if new is None or new.shape != old.shape:  # recorded, and absent or reshaped now: beyond any tolerance
            return Row("input form", key, math.inf, math.inf, math.inf, math.inf, 1.0, math.inf)
        parts.append(_errors(new, old, baseline.tensors[f"{probe}/attention_mask"].bool(), tolerance))
    return _row("input form", key, parts)


def _row(place: str, name: str, parts: list[dict]) -> Row:
    """One row of the report from the `_errors` of each probe."""
    n = max(sum(p["n"] for p in parts), 1)
    return Row(
        place,
        name,
        max((p["max_abs"] for p in parts), default=0.0),
        sum(p["sum_abs"] for p in parts) / n,
        max((p["max_rel"] for p in parts), default=0.0),
        sum(p["sum_rel"] for p in parts) / n,
        sum(p["over"] for p in parts) / n,
        max((p["ratio"] for p in parts), default=0.0),
    )


def _comparable(baseline: Baseline, bert: Bert) -> torch.dtype:
    """The recorded dtype, once the recorded model, config and attention are the live ones (`BaselineError` if not)."""
    from bertcheck.subjects._compat import attention_implementations

    meta = baseline.meta
    if architecture(bert.config) != architecture(_Config(meta["config"])):
        old, new = architecture(_Config(meta["config"])), architecture(bert.config)
        diff = {k: (old[k], new[k]) for k in ARCHITECTURE if old[k] != new[k]}
        raise BaselineError(
            f"{baseline.path} is from another config: "
            + ", ".join(f"{k} {old!r} recorded, {new!r} live" for k, (old, new) in diff.items())
        )
    dtype = getattr(torch, meta["dtype"], None)
    if not isinstance(dtype, torch.dtype):
        raise BaselineError(f"{baseline.path}: unknown dtype {meta['dtype']!r}")
    if meta["attention"] not in attention_implementations(bert.config):
        raise BaselineError(
            f"{baseline.path} was recorded with attention {meta['attention']!r}, which this transformers "
            f"does not have for {bert.member.model_class} ({attention_implementations(bert.config)})"
        )
    return dtype


def _live_meta() -> dict:
    import transformers

    return {
        "transformers": transformers.__version__,
        "torch": torch.__version__,
        "python": platform.python_version(),
        "platform": platform.platform(),
    }


def _provenance(baseline: Baseline, bert: Bert, live_meta: dict) -> list[str]:
    """What differs between then and now besides the values: the checkpoint's identity, versions, and
    config fields outside the architecture."""
    meta = baseline.meta
    identity = _same_checkpoint(baseline, bert)
    notes = [identity] if identity else []
    for key in ("transformers", "torch", "python"):
        if meta.get(key) != live_meta[key]:
            notes.append(f"{key} {meta.get(key)} recorded, {live_meta[key]} live")
    live_config = json.loads(json.dumps(bert.config.to_dict(), default=str))  # as recorded: JSON keys are strings
    recorded = meta["config"]
    other = {k for k in set(recorded) | set(live_config) if k not in ARCHITECTURE and not k.startswith("_")}
    other.discard("transformers_version")
    for label, keys in (
        (
            "config fields changed (outside the architecture)",
            [k for k in other if k in recorded and k in live_config and recorded[k] != live_config[k]],
        ),
        ("config fields only in the recorded config", [k for k in other if k not in live_config]),
        ("config fields only in the live config", [k for k in other if k not in recorded]),
    ):
        keys = sorted(keys)
        if keys:
            notes.append(
                f"{label}: " + ", ".join(keys[:10]) + (f" and {len(keys) - 10} more" if len(keys) > 10 else "")
            )
    return notes


def _structure(baseline: Baseline, live_state: dict, live: dict, live_counts: dict) -> list[str]:
    """Names, shapes, hidden-state counts and token ids that differ: what makes values incomparable."""
    out: list[str] = []
    recorded = baseline.tensors
    _diff_keys(out, "state_dict", baseline.meta["state_dict"], live_state)

    def shapes(tensors):  # the input forms are compared apart (`_compare_forms`): a release may lack one
        return {k: list(v.shape) for k, v in tensors.items() if f"/{FORM_KEY}" not in k}

    _diff_keys(out, "activation", shapes(recorded), shapes(live))
    for probe in PROBES:
        n_rec, n_live = baseline.meta["hidden_states"].get(probe), live_counts.get(probe)
        if n_rec != n_live:
            out.append(f"probe {probe}: {n_rec} hidden states recorded, {n_live} live")
        ids = f"{probe}/input_ids"
        if ids in recorded and ids in live and not torch.equal(recorded[ids], live[ids]):
            out.append(f"probe {probe}: the tokenizer gives other ids now")  # every value would differ
    return out


def _rows(baseline: Baseline, live: dict, tolerance: Tolerance, n_layers: int) -> list["Row"]:
    """One row per (place, activation): the drift over every probe's real tokens, in forward order."""
    recorded = baseline.tensors
    stats: dict[tuple[str, str], list] = {}
    for key, old in recorded.items():
        probe, name = key.split("/", 1)
        new = live.get(key)
        if (
            name in ("input_ids", "attention_mask", "token_type_ids")
            or name.startswith(FORM_KEY)
            or new is None
            or list(new.shape) != list(old.shape)
        ):
            continue
        mask = recorded[f"{probe}/attention_mask"]
        keep = _tokens(probe, mask)
        real = (mask if keep is None else mask[:, keep]).bool()
        stats.setdefault(_split(name), []).append(_errors(new, old, real, tolerance))
    rows = [_row(place, name, parts) for (place, name), parts in stats.items()]
    order = {f"layer {i}": i + 1 for i in range(n_layers)} | {"embeddings": 0}
    rows.sort(key=lambda r: (order.get(r.layer, 10**7), _name_order(r.name)))
    return rows


def _same_checkpoint(baseline: Baseline, bert: Bert) -> str | None:
    """`BaselineError` unless `bert` is the checkpoint the baseline was recorded on, judged by content
    (the fingerprint of its files), whatever path or name names it now. Returns a note when
    only the model's name can say (a baseline from before fingerprints, or a model built in memory)."""
    meta = baseline.meta
    recorded, live = meta.get("fingerprint"), bert.source.fingerprint() if bert.source is not None else None
    if recorded is None or live is None:
        if meta["model"] != bert.model_name:
            raise BaselineError(f"{baseline.path} was recorded on model {meta['model']!r}, not {bert.model_name!r}")
        missing = "recorded" if recorded is None else "live"
        return f"checkpoint identified by its name {bert.model_name!r} only (no fingerprint {missing})"
    if recorded != live:
        raise BaselineError(
            f"{baseline.path} was recorded on another checkpoint: fingerprint {recorded} (model "
            f"{meta['model']!r} then), {live} for {bert.model_name!r} here; name the recorded one with --model"
        )
    return (
        None
        if meta["model"] == bert.model_name
        else f"recorded as {meta['model']!r}, the same checkpoint as {bert.model_name!r} here"
    )


def _name_order(name: str) -> int:
    vocabulary = [*embed_names(True, True), *CAPTURED_LAYER_NAMES]  # every member's embeddings' names
    return vocabulary.index(name) if name in vocabulary else len(vocabulary)


def _errors(new: torch.Tensor, old: torch.Tensor, real: torch.Tensor, tol: Tolerance) -> dict:
    """The drift of one activation over real tokens: what is over the tolerance as `compare` judges every
    property, and the sums the baseline report adds up per layer."""
    mismatch, ratio = differences(new, old, tol, real)
    a, e = new.double()[real], old.double()[real]
    diff = (a - e).abs()
    rel = torch.where(diff == 0, torch.zeros_like(diff), diff / e.abs())
    return {
        "n": diff.numel(),
        "max_abs": float(diff.max()) if diff.numel() else 0.0,
        "sum_abs": float(diff.sum()),
        "max_rel": float(rel.max()) if rel.numel() else 0.0,
        "sum_rel": float(rel[torch.isfinite(rel)].sum()),
        "over": 0 if mismatch is None else mismatch.mismatched,
        "ratio": ratio,
    }


def _diff_keys(out: list[str], what: str, recorded: dict, live: dict) -> None:
    gone = [k for k in recorded if k not in live]
    new = [k for k in live if k not in recorded]
    reshaped = [f"{k} {recorded[k]} -> {live[k]}" for k in recorded if k in live and recorded[k] != live[k]]
    for items, said in (
        (gone, "name(s) recorded but absent now"),
        (new, "name(s) new now"),
        (reshaped, "shape(s) changed"),
    ):
        if items:
            out.append(f"{len(items)} {what} {said}: {', '.join(items[:6])}{' ...' if len(items) > 6 else ''}")


class _Config:
    def __init__(self, values: dict):
        self.__dict__.update(values)
