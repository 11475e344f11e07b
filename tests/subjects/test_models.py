import json

import pytest
import torch

from bertcheck.inputs.cases import Case
from bertcheck.properties.registry import run_model_property
from bertcheck.subjects.models import EMBEDDED, ModelError, parse_model_names, randomize_, resolve
from bertcheck.subjects.subject import Bert


def _checkpoint(tmp_path, tiny, **overrides):
    """Save random:tiny as a user would, then let a test spoil one file."""
    tiny.model().save_pretrained(str(tmp_path))
    tiny.tokenizer.save_pretrained(str(tmp_path))
    for name, content in overrides.items():
        target = tmp_path / name.replace("__", ".")
        if content is None:
            target.unlink(missing_ok=True)  # transformers 5 saves tokenizer.json only, 4.x vocab.txt too
        else:
            target.write_text(content)
    return tmp_path


@pytest.mark.parametrize(
    "model_name, model_class, max_length",
    [
        ("random:roberta-tiny", "RobertaModel", 512),
        ("random:ernie-tiny", "ErnieModel", 512),
        ("random:albert-tiny", "AlbertModel", 512),
    ],
)
def test_a_member_s_checkpoint_directory_is_detected_from_its_config_and_checked(
    tmp_path, model_cache, model_name, model_class, max_length
):
    from transformers import BertTokenizerFast

    member = Bert.once(model_name, model_cache)
    member.model().save_pretrained(str(tmp_path))
    # No RoBERTa tokenizer ships offline; a WordPiece one stands in (AutoTokenizer reads whichever is saved).
    BertTokenizerFast.from_pretrained(str(member.source.tokenizer_path)).save_pretrained(str(tmp_path))
    bert = Bert.load(str(tmp_path))
    assert type(bert.model()).__name__ == model_class and bert.member.model_type == member.member.model_type
    assert bert.max_length == max_length  # RoBERTa: 514 position rows, the first two never a real token's
    assert run_model_property(bert, Case(("this is a test sentence", "short")), "hidden-states") <= 1.0


@pytest.mark.parametrize(
    "model_type, words",
    [("xlm-roberta-xl", "pre-LN"), ("mpnet", "relative attention")],
)
def test_a_family_member_the_reference_does_not_follow_is_refused_by_name(tmp_path, tiny, model_type, words):
    path = _checkpoint(tmp_path, tiny, config__json=json.dumps({"model_type": model_type}))
    with pytest.raises(ModelError) as caught:
        resolve(str(path))
    assert f"model_type={model_type!r}, of BERT's family, but the reference does not follow" in str(caught.value)
    assert words in str(caught.value)


def test_the_random_family_members_are_named_with_their_base_sizes():
    for name in (
        "roberta-base",
        "xlm-roberta-base",
        "camembert-base",
        "data2vec-text-base",
        "electra-base-discriminator",
        "electra-small-discriminator",
        "ernie-3.0-base-zh",
    ):
        assert resolve(f"random:{name}").random_config == name
    notes = resolve("random:xlm-roberta-base").notes
    assert notes and "vocabulary cut to 50,265 rows (the real one has 250,002)" in notes[0]


def test_a_saved_checkpoint_directory_is_checked_like_the_embedded_models(tmp_path, tiny):
    bert = Bert.load(str(_checkpoint(tmp_path, tiny)))
    assert bert.config.hidden_size == 64
    assert run_model_property(bert, Case(("this is a test sentence",)), "hidden-states") <= 1.0


@pytest.mark.parametrize(
    "spoil, message",
    [
        ({"config__json": None}, "has no config.json, so it is not a saved Hugging Face model"),
        ({"config__json": "{not json"}, "config.json is not valid JSON"),
        (
            {"config__json": json.dumps({"model_type": "gpt2"})},
            "config.json says model_type='gpt2', which is not of BERT's family; bertcheck checks bert, electra",
        ),
        ({"model__safetensors": None, "pytorch_model__bin": None}, "has no weights (looked for model.safetensors"),
        ({"vocab__txt": None, "tokenizer__json": None}, "has no tokenizer (looked for vocab.txt, tokenizer.json"),
    ],
    ids=["no config", "config not JSON", "not a BERT", "no weights", "no tokenizer"],
)
def test_a_broken_checkpoint_is_refused_before_loading_with_what_is_wrong(tmp_path, tiny, spoil, message):
    path = _checkpoint(tmp_path, tiny, **spoil)
    with pytest.raises(ModelError) as caught:
        resolve(str(path))
    assert message in str(caught.value)
    assert str(caught.value).startswith(f"--bert-model {str(path)!r}: ")


def test_corrupted_weights_are_reported_as_a_failed_load_not_a_traceback(tmp_path, tiny):
    path = _checkpoint(tmp_path, tiny, model__safetensors="this is not a safetensors file", pytorch_model__bin=None)
    with pytest.raises(ModelError, match=r"loading .* failed: "):
        Bert.load(str(path))


@pytest.mark.parametrize(
    "model_name, message",
    [
        ("bert-large-cased", "unknown model, and not in the local Hugging Face cache under that name. Give one of"),
        ("random:bert-large", "no random config 'bert-large'; known: random:bert-base-uncased, random:tiny"),
        ("./no/such/dir", "does not exist"),
        ("bertcheck-tests/not-cached", "not in the local Hugging Face cache (bertcheck never downloads)"),
    ],
)
def test_model_names_that_name_nothing_usable_say_what_was_tried(model_name, message, tmp_path, monkeypatch):
    import huggingface_hub.constants

    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_CACHE", str(tmp_path))
    with pytest.raises(ModelError, match=message.replace("(", r"\(").replace(")", r"\)")):
        resolve(model_name)


def test_a_file_is_not_a_checkpoint(tmp_path):
    (tmp_path / "model.bin").write_bytes(b"\0")
    with pytest.raises(ModelError, match="is a file; give the checkpoint directory holding config.json"):
        resolve(str(tmp_path / "model.bin"))


def test_an_empty_directory_is_not_a_checkpoint(tmp_path):
    with pytest.raises(ModelError, match="has no config.json"):
        resolve(str(tmp_path))


@pytest.mark.parametrize("model_name", ["someone/tiny-bert", "bert-base-cased"], ids=["org/name", "a legacy id"])
def test_a_hub_id_resolves_from_the_local_cache_only(tmp_path, tiny, monkeypatch, model_name):
    import huggingface_hub.constants

    folder = tmp_path / ("models--" + model_name.replace("/", "--"))
    snapshot = folder / "snapshots" / "0123abcd"
    snapshot.mkdir(parents=True)
    _checkpoint(snapshot, tiny)
    (folder / "refs").mkdir()
    (folder / "refs" / "main").write_text("0123abcd")
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_CACHE", str(tmp_path))
    assert resolve(model_name).path == snapshot


def test_model_names_default_to_both_embedded_models_and_split_on_commas():
    assert parse_model_names(None) == parse_model_names("") == list(EMBEDDED)
    assert parse_model_names("minilm, random:tiny") == ["minilm", "random:tiny"]
    assert resolve("all-MiniLM-L6-v2").path == resolve("minilm").path


def test_random_weights_depend_only_on_the_seed_and_the_parameter_names(tiny):
    from transformers import BertModel

    twin = BertModel(tiny.config)
    randomize_(twin)
    for (name, a), (_, b) in zip(tiny.model().state_dict().items(), twin.state_dict().items()):
        assert torch.equal(a, b), name
    # LayerNorms and biases are random too: a swapped LayerNorm or a dropped bias must show.
    gains = [p.detach() for n, p in twin.named_parameters() if n.endswith("LayerNorm.weight")]
    assert all(float((g - 1).abs().max()) > 0.1 for g in gains)
    assert all(float(p.detach().abs().max()) > 0 for n, p in twin.named_parameters() if n.endswith(".bias"))


def test_the_random_bert_base_is_the_bert_base_uncased_architecture():
    from transformers import BertConfig

    config = BertConfig()
    sizes = (config.vocab_size, config.hidden_size, config.num_hidden_layers, config.num_attention_heads)
    assert sizes == (30522, 768, 12, 12)
    assert (config.intermediate_size, config.layer_norm_eps, config.hidden_act) == (3072, 1e-12, "gelu")


def test_bertcheck_family_names_every_member_s_random_model_at_its_real_size():
    from bertcheck.spec.family import MEMBERS
    from bertcheck.subjects.models import RANDOM_CONFIGS, TEST_SIZED, family_models, random_config

    everyone = family_models("all")
    assert {random_config(name.removeprefix("random:")).model_type for name in everyone} == set(MEMBERS)
    assert not {name.removeprefix("random:") for name in everyone} & set(TEST_SIZED)
    assert len(everyone) == len(RANDOM_CONFIGS) - len(TEST_SIZED)
    assert family_models("roberta, ernie") == ["random:roberta-base", "random:ernie-3.0-base-zh"]
    assert family_models("") == []
    with pytest.raises(ModelError, match="BERTCHECK_FAMILY='gpt2': gpt2 is not a member bertcheck follows"):
        family_models("gpt2")


def test_loading_a_model_past_the_models_share_of_the_budget_drops_the_least_recently_used(monkeypatch):
    from bertcheck.subjects import subject

    held = {}

    class Held:  # a loaded Bert, as far as the room-making reads it
        def __init__(self, gib):
            self.gib, self.observations = gib, {"input": "result"}

        def held_bytes(self):
            return int(self.gib * 2**30)

        def release(self):  # what Bert.release does to what it observed
            self.observations = {}

    monkeypatch.setenv("BERTCHECK_WORKER_MEMORY", "2")  # the models may hold 0.6 x 2 = 1.2 GiB
    monkeypatch.setattr(subject, "_LOADED", held)
    held.update(old=Held(0.2), used=Held(0.9))
    subject._make_room("used")
    assert list(held) == ["old", "used"]  # 1.1 GiB: both stay
    old = held["old"]
    held["new"] = Held(0.5)
    subject._make_room("new")
    assert list(held) == ["new"] and old.observations == {}  # the oldest first, then the next, never the new one
    held.update(first=Held(5.0))
    subject._make_room("first")
    assert list(held) == ["first"]  # alone past the share, it stays: a model too big for it still runs


def test_a_model_dropped_to_make_room_is_freed_with_its_copies_and_what_shares_their_tensors(monkeypatch):
    # Before Bert.release, a dropped model stayed alive through its float64 copy and a candidate's build
    # of it: a worker of a BERTCHECK_FAMILY=all run grew from 2.05 to 7.51 GiB.
    import gc
    import weakref

    from bertcheck.subjects import subject

    monkeypatch.setattr(subject, "_LOADED", {})
    monkeypatch.setenv("BERTCHECK_WORKER_MEMORY", "0.0001")  # any second model passes the share
    first = subject.Bert.once("random:tiny")
    builds = {"build": first.model()}  # a candidate's build, forgotten through on_drop
    first.on_drop.append(lambda model_name, key: builds.clear())
    loaded, copy = weakref.ref(first.model()), weakref.ref(first.model(torch.bfloat16))
    subject.Bert.once("random:roberta-tiny")
    gc.collect()
    assert list(subject._LOADED) == ["random:roberta-tiny"]
    assert loaded() is None and copy() is None and builds == {}
    assert subject.Bert.once("random:tiny") is not first  # asked again, it is loaded again


def test_a_model_converted_past_the_models_share_drops_the_others_as_a_load_would(monkeypatch):
    from bertcheck.subjects import subject

    monkeypatch.setattr(subject, "_LOADED", {})
    first = subject.Bert.once("random:tiny")
    second = subject.Bert.once("random:roberta-tiny")
    share = (first.held_bytes() + second.held_bytes() * 1.5) / 2**30 / subject.MODELS_SHARE
    monkeypatch.setenv("BERTCHECK_WORKER_MEMORY", str(share))  # both fit in float32, not with one in float64
    second.model(torch.float32)
    assert list(subject._LOADED) == ["random:tiny", "random:roberta-tiny"]
    second.model(torch.float64)  # converted in place: twice its float32 bytes
    assert list(subject._LOADED) == ["random:roberta-tiny"]


@pytest.mark.parametrize(
    "fields, words",
    [
        ({"inner_group_num": 2}, "inner_group_num=2: each ALBERT group must hold one layer"),
        ({"num_hidden_groups": 3, "num_hidden_layers": 2}, "num_hidden_groups=3: need 1 .. num_hidden_layers (2)"),
    ],
)
def test_an_albert_config_whose_layers_cannot_be_checked_one_by_one_is_refused_by_name(fields, words):
    from bertcheck.subjects.audit import audit_config

    audit = audit_config({"model_type": "albert", "embedding_size": 32, **fields}, "5.0.0")
    assert any(words in refusal for refusal in audit.refusals), audit.refusals
