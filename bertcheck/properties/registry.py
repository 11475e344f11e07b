"""Every property bertcheck has, once: what it runs on, what one example costs, and which dtypes it judges.

The CLI (`check`, `check-layer`, `verify --property`), `verify.run`, the benchmark, the worst-error table
and the tests of the README's tables read this table; nothing else lists properties.

Every property has one shape, `Property`, and is called one way: ``prop(bert, case, cand=None)``, on a
candidate or (None) on HF's own model or layer. Its `kind` is what it is fed: ``model`` (sentences) or
``layer`` (generated hidden states). Its `on` is what it runs on:

- ``forward``: the one hooked forward of HF's model, shared by every such property
  (`bertcheck.properties.one_forward`);
- ``hf``: HF's own model or layer, through forwards of its own: options, modes and attention
  implementations a reimplementation's function does not have (`bertcheck.properties.hf_properties`),
  every input form of its API (`bertcheck.properties.input_forms`), and a layer's own modules;
- ``any``: any candidate, HF's own among them (`bertcheck.properties.model_properties`,
  `bertcheck.properties.layer_properties`).

Only ``any`` properties take a candidate; asked of one, the others refuse.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import partial

from hypothesis import reject
from hypothesis.control import currently_in_test_context
from hypothesis.errors import UnsatisfiedAssumption

from bertcheck.properties import hf_properties, input_forms, layer_properties, model_properties, one_forward
from bertcheck.subjects.candidate import HF_LAYER, HF_MODEL
from bertcheck.inputs import coverage
from bertcheck.properties.failures import SHRINKING, PropertyFailure, Unavailable
from bertcheck.properties.worst import FAILED, record


@dataclass(frozen=True)
class Property:
    key: str
    kind: str  # "model" (fed sentences) or "layer" (fed generated hidden states)
    on: str  # "forward", "hf" or "any" (above)
    run: Callable  # run(cand, bert, case) -> the example's worst share of the tolerance; raises its failure
    forwards: str  # what one example runs: the floor of its cost
    half: bool = False  # judges float16 and bfloat16 candidates (`bertcheck.spec.low_precision`)

    def __call__(self, bert, case, cand=None) -> float:
        """Run on one example: on `cand` (default HF's own model or layer); its worst share of the tolerance."""
        __tracebackhide__ = True
        if cand is not None and not cand.own and not self.candidates:
            raise ValueError(f"{self.key} checks HF's own {self.kind}, not a candidate's function")
        return self.run(cand or (HF_MODEL if self.kind == "model" else HF_LAYER), bert, case)

    @property
    def candidates(self) -> bool:
        """Whether a reimplementation can be asked it (`bertcheck verify`); every property runs on HF's own."""
        return self.on == "any"


def _on_hf(run: Callable) -> Callable:
    """A property of HF's own model or layer, `run(bert, case)`, in the one shape: it takes no candidate."""
    return lambda cand, bert, case: run(bert, case)


def _on_the_forward(key: str) -> Callable:
    """A read-only property, in the one shape: its result on the hooked forward shared by all four."""
    return lambda cand, bert, case: one_forward.result_of(bert, case, key)


def _shaped(key: str, on: str, run: Callable | None) -> Callable:
    if on == "forward":
        return _on_the_forward(key)
    return _on_hf(run) if on == "hf" else run


def _table(kind: str, *rows) -> dict[str, Property]:
    return {
        key: Property(key, kind, on, _shaped(key, on, run), forwards, half) for key, on, run, forwards, half in rows
    }


# HF's model, and model candidates: `bertcheck check KEY`, `bertcheck verify --model-impl`.
MODEL = _table(
    "model",
    ("residual-identity", "forward", None, "the shared hooked forward", False),
    (
        "layernorm",
        "forward",
        None,
        "the shared hooked forward; each LayerNorm re-run on its input",
        False,
    ),
    ("intermediate-width", "forward", None, "the shared hooked forward", False),
    (
        "hidden-states",
        "forward",
        None,
        "the shared hooked forward; a reference layer per layer",
        False,
    ),
    ("model-equivalence", "any", model_properties.model_equivalence, "1 call; a reference layer per layer", True),
    ("attention-pattern", "hf", hf_properties.attention_pattern, "1 eager forward; a reference layer per layer", False),
    ("eager-sdpa", "hf", hf_properties.eager_matches_sdpa, "1 forward per attention implementation", False),
    ("padding", "any", model_properties.padding, "3 forwards: as drawn, other ids at padding, 5 more padded", True),
    ("batching", "any", model_properties.batching, "1 forward, 1 per text alone, 1 reversed", True),
    ("determinism", "any", model_properties.determinism, "2 forwards", True),
    (
        "dropout",
        "hf",
        hf_properties.dropout_placement,
        "3 forwards: hooked in train mode, eval, train without dropout",
        False,
    ),
    ("precision", "hf", hf_properties.reference_agreement, "1 forward; a float64 reference layer per layer", False),
    ("padded-row", "hf", hf_properties.fully_padded_row, "2 forwards", False),
    ("pooler", "hf", hf_properties.pooler, "1 forward; the reference pooler", False),
    ("gradients", "hf", hf_properties.gradients, "1 forward and 1 backward of HF and of the reference", False),
    # Every way users call BertModel (`bertcheck.properties.input_forms`): `bertcheck check form-mask-bool`, ...
    *(
        (input_forms.key_of(form), "hf", partial(input_forms.check_form, form), form.forwards, False)
        for form in input_forms.FORMS.values()
    ),
)
# HF's layer, and layer candidates: `bertcheck check-layer KEY`, `bertcheck verify --impl`.
LAYER = _table(
    "layer",
    ("layer-equivalence", "any", layer_properties.layer_equivalence, "1 call; 1 reference layer", True),
    ("output-statistics", "any", layer_properties.output_statistics, "1 call after surgery", False),
    ("residual-probes", "any", layer_properties.residual_probes, "2 calls after surgery; 2 reference layers", True),
    ("permutation", "any", layer_properties.permutation, "2 calls", True),
    ("batching", "any", layer_properties.batching, "1 call, 1 per row alone, 1 reversed", True),
    ("padding", "any", layer_properties.padding, "3 calls", True),
    ("determinism", "any", layer_properties.determinism, "2 calls", True),
    ("ffn-locality", "hf", layer_properties.ffn_locality, "2 feed-forward calls", False),
    ("layernorm-invariance", "hf", layer_properties.layernorm_affine_invariance, "2 LayerNorm calls each", False),
)
# Names model properties had before HF's model was a candidate like any other (`verify --property`).
RENAMED = {"model-batching": "batching", "model-padding": "padding", "model-determinism": "determinism"}


def table(kind: str) -> dict[str, Property]:
    return MODEL if kind == "model" else LAYER


def for_candidates(kind: str, names=None) -> dict[str, Property]:
    """What `bertcheck verify` runs on a candidate of `kind` ("layer" or "model"): every property a
    candidate can be asked, or those `names` (an old model-candidate name accepted), each once, in the
    order given; ValueError naming the unknown ones."""
    every = {key: p for key, p in table(kind).items() if p.candidates}
    if names is None:
        return every
    keys = list(dict.fromkeys(RENAMED.get(n, n) if kind == "model" else n for n in names))
    unknown = [key for key in keys if key not in every]
    if unknown:
        raise ValueError(f"unknown {kind} properties {unknown}; known: {', '.join(every)}")
    return {key: every[key] for key in keys}


def named(kind: str, key: str) -> Property:
    """The property `key` of `kind` (an old model-candidate name accepted); ValueError naming the known ones."""
    key = RENAMED.get(key, key) if kind == "model" else key
    if key not in table(kind):
        raise ValueError(f"unknown {kind} property {key!r}; known: {', '.join(table(kind))}")
    return table(kind)[key]


def run_model_property(bert, case, key: str, cand=None) -> float:
    """Model property `key` on one example of sentences, on HF's model (or `cand`); its worst error as a
    share of the tolerance, recorded for the run's worst-error table. Raises `PropertyFailure`."""
    __tracebackhide__ = True
    prop = named("model", key)
    # A case the model cannot take, or the candidate declared it does not run (`bertcheck.runs`).
    why = bert.unsupported(case) or (cand.outside(bert, case) if cand is not None and not cand.own else None)
    if why:
        coverage.rejected(_recorded(prop, cand), bert.model_name, case)
        if currently_in_test_context():
            # The strategies are built before the model is known: an input this model does not take
            # (a sentence pair for a single token type) is rejected, and Hypothesis draws another.
            reject()
        raise Unavailable(why)
    return _run(prop, bert, case, cand)


def run_layer_property(bert, case, key: str, cand=None) -> float:
    """Layer property `key` on one generated example, on HF's layer (or `cand`); as `run_model_property`."""
    __tracebackhide__ = True
    return _run(named("layer", key), bert, case, cand)


def _run(prop: Property, bert, case, cand) -> float:
    """One example, recorded in the worst-error table: its share of the tolerance, or FAILED when it
    raised (a failure, a candidate error, a crash), so the table never shows a failed property as a pass."""
    __tracebackhide__ = True
    row = _recorded(prop, cand)
    coverage.record(row, bert.model_name, case)  # the input classes of this example (`bertcheck.inputs.coverage`)
    SHRINKING.check()  # an item shrinking a failure past its time budget stops here, reporting the smallest
    failure = None
    try:
        value = prop(bert, case, cand)
    except PropertyFailure as raised:
        failure = raised.again()  # raised again below, outside this block: see `PropertyFailure.again`
    except (Unavailable, UnsatisfiedAssumption):
        raise
    except Exception:
        record(row, bert.model_name, FAILED)
        raise
    if failure is not None:
        record(row, bert.model_name, FAILED)
        SHRINKING.failed(failure)
        raise failure
    return record(row, bert.model_name, value)


def _recorded(prop: Property, cand) -> str:
    """The property's row in the worst-error table: a layer's rows apart from a model's of the same name,
    a candidate's apart from HF's."""
    label = f"layer {prop.key}" if prop.kind == "layer" and prop.key in MODEL else prop.key
    return label if cand is None or cand.own else f"candidate {label}"


def rows() -> list[str]:
    """The worst-error table's rows in this table's order: HF's model, HF's layer, then candidates'."""
    props = [*MODEL.values(), *LAYER.values()]
    return [_recorded(p, None) for p in props] + [f"candidate {_recorded(p, None)}" for p in props if p.candidates]
