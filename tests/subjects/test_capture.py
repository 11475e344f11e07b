import pytest
import torch

from bertcheck.subjects.capture import capture
from bertcheck.inputs.cases import Case
from bertcheck.spec.names import CAPTURED_LAYER_NAMES, EMBED_NAMES, layer_name


def _hook_count(model):
    """Forward hooks on `model`, but for those transformers 5.x installs for itself the first time a model
    is asked for attentions or hidden states (and keeps)."""
    hooks = [h for m in model.modules() for h in (*m._forward_hooks.values(), *m._forward_pre_hooks.values())]
    return sum(not getattr(h, "__module__", "").startswith("transformers") for h in hooks)


def test_one_forward_records_every_name_of_the_vocabulary_for_every_layer(tiny):
    inputs = tiny.encode(Case(("this is a test sentence", "short")))
    acts = capture(tiny.model(), **inputs)
    expected = set(EMBED_NAMES) | {layer_name(i, n) for i in range(2) for n in CAPTURED_LAYER_NAMES}
    assert set(acts) == expected
    assert not acts.missing and not acts.repeated
    assert len(acts.hidden_states) == 3
    assert acts[layer_name(1, "mlp_pre")].shape == (2, 7, 256)
    # The pre-hook on the layer reads the layer's input, which output_hidden_states also reports.
    assert torch.equal(acts[layer_name(1, "resid_pre")], acts.hidden_states[1])
    assert torch.equal(acts[layer_name(1, "resid_post")], acts.hidden_states[2])


def test_hooks_are_removed_even_when_the_forward_raises(fresh):
    bert = fresh()
    model = bert.model()
    before = _hook_count(model)

    def explode(module, args):
        raise RuntimeError("boom")

    model.encoder.layer[1].register_forward_pre_hook(explode)
    with pytest.raises(RuntimeError, match="boom"):
        capture(model, **bert.encode(Case(("a",))))
    assert _hook_count(model) == before + 1  # only the test's own hook is left


def test_a_module_run_twice_is_recorded_not_silently_overwritten(fresh):
    bert = fresh()
    block = bert.model().encoder.layer[0]

    def forward(self, x):
        self.dense(x)  # a wasted first call, as a bad refactor might leave
        return self.intermediate_act_fn(self.dense(x))

    block.intermediate.__class__ = type("Twice", (type(block.intermediate),), {"forward": forward})
    acts = capture(bert.model(), **bert.encode(Case(("a",))))
    assert acts.repeated == {layer_name(0, "mlp_pre"): 2}
