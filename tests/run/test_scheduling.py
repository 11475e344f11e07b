"""Which worker takes which items (`bertcheck.run.scheduling`): the units a sharing group forms, the group
a property's mark names, and the dtype order of a model's shards."""

from types import SimpleNamespace

import pytest

from bertcheck.inputs.shards import GROUPS, ONE_FORWARD, Shard
from bertcheck.run.scheduling import dtype_order, shared, sharing_group, unit_of


def _definition(*args):
    marker = SimpleNamespace(args=args)
    return SimpleNamespace(nodeid="properties/test_p.py::test_p", get_closest_marker=lambda name: marker)


def test_the_mark_names_its_group_and_no_argument_is_the_one_forward():
    assert sharing_group(_definition()) == ONE_FORWARD
    assert [sharing_group(_definition(group)) for group in GROUPS] == list(GROUPS)
    unmarked = SimpleNamespace(nodeid="x", get_closest_marker=lambda name: None)
    assert sharing_group(unmarked) is None


def test_a_group_that_does_not_exist_is_one_line_naming_the_test_and_the_groups():
    with pytest.raises(ValueError) as caught:
        sharing_group(_definition("one-foward"))
    assert str(caught.value) == (
        f"properties/test_p.py::test_p: shares_forward('one-foward'): the groups are {', '.join(GROUPS)}"
    )


def test_a_groups_items_of_one_model_and_shard_are_one_unit_and_every_other_item_its_own():
    a = "properties/test_layernorm.py::test_layernorm[minilm-shard2of4-one-forward]"
    b = "properties/test_hidden_states.py::test_hidden_states[minilm-shard2of4-one-forward]"
    other_shard = "properties/test_hidden_states.py::test_hidden_states[minilm-shard3of4-one-forward]"
    form = "properties/test_input_forms.py::test_form[minilm-shard2of4-plain-call-mask-bool]"
    alone = "properties/test_padding_and_batching.py::test_padding[minilm-shard2of4]"
    assert unit_of(a) == unit_of(b) != unit_of(other_shard)
    assert shared(form) == "minilm-shard2of4-plain-call" and unit_of(form) != unit_of(a)
    assert shared(alone) is None and unit_of(alone) == alone


def _item(model, index):
    params = {"bert": SimpleNamespace(model_name=model)}
    if index is not None:
        params["bertcheck_shard"] = Shard(index, 4)
    return SimpleNamespace(callspec=SimpleNamespace(params=params))


def test_the_dtype_order_puts_the_rest_first_then_each_models_even_shards_before_its_odd():
    items = [_item("minilm", 1), _item("minilm", 0), _item("bert", 3), _item("bert", 2), _item("x", None)]
    ordered = sorted(items, key=dtype_order)
    got = [
        (i.callspec.params["bert"].model_name, getattr(i.callspec.params.get("bertcheck_shard"), "index", None))
        for i in ordered
    ]
    assert got == [("x", None), ("bert", 2), ("bert", 3), ("minilm", 0), ("minilm", 1)]
    assert dtype_order(SimpleNamespace()) == (0,)  # not parametrized at all


def test_a_unit_s_model_is_the_longest_run_model_its_parameters_start_with():
    from bertcheck.run.scheduling import model_of

    models = ("random:roberta-base", "random:roberta-tiny", "minilm", "random:electra-base-discriminator")
    assert model_of("one forward [random:roberta-base-shard2of4-one-forward]", models) == "random:roberta-base"
    assert model_of("properties/test_p.py::test_p[minilm]", models) == "minilm"
    assert model_of("properties/test_p.py::test_p[random:electra-base-discriminator-float64]", models) == (
        "random:electra-base-discriminator"
    )
    assert model_of("tests/test_x.py::test_x", models) is None
    assert model_of("properties/test_p.py::test_p[random:bert-base-uncased]", models) is None


def test_a_worker_keeps_to_the_model_it_ran_last_while_that_model_has_units():
    from collections import OrderedDict

    from bertcheck.run.scheduling import OneForwardScheduling

    scopes = [f"t.py::t[{model}-shard{k}of4]" for k in range(4) for model in ("a", "b")]  # a, b, a, b, ...
    scheduling = OneForwardScheduling.__new__(OneForwardScheduling)  # no xdist config: the queue alone
    scheduling.models, scheduling._last_model = ("a", "b"), {}
    scheduling.workqueue = OrderedDict((scope, {scope: False}) for scope in scopes)
    scheduling.assigned_work, sent = {}, []

    class Node:  # an xdist worker, as far as the scheduling talks to it
        def __init__(self, n):
            self.n = n

        def send_runtest_some(self, indexes):
            sent.append((self.n, scopes[indexes[0]]))

    one, two = Node(1), Node(2)
    scheduling.registered_collections = {one: scopes, two: scopes}
    for node in (one, two, one, two, one, one, two, two):
        scheduling._assign_work_unit(node)
    models = [(n, scope.split("[")[1][0]) for n, scope in sent]
    assert models == [(1, "a"), (2, "b"), (1, "a"), (2, "b"), (1, "a"), (1, "a"), (2, "b"), (2, "b")]
