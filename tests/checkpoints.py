"""Checkpoints as users make them, built on the fly from random:tiny: a config field changed, weights
renamed, added or cast, a head saved beside the encoder. Written at the file level (config.json and
model.safetensors), so the same checkpoint comes out of every transformers version."""

import json
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file


def save(path: Path, tiny, *, config=None, drop=(), rename=None, extra=None, dtype=None) -> Path:
    """random:tiny saved to `path` as `save_pretrained` does, then:

    - config: fields to set in config.json (a value of None removes the field);
    - drop: config.json fields to remove;
    - rename: key -> new key for every weight (a prefix, say);
    - extra: weights to add, name -> tensor;
    - dtype: cast every weight (and say so in config.json, as save_pretrained does).
    """
    path.mkdir(parents=True, exist_ok=True)
    tiny.model().save_pretrained(str(path), safe_serialization=True)  # 4.33 writes pytorch_model.bin by default
    tiny.tokenizer.save_pretrained(str(path))
    weights = load_file(str(path / "model.safetensors"))
    if rename:
        weights = {rename(key): value for key, value in weights.items()}
    weights.update(extra or {})
    if dtype is not None:
        weights = {key: value.to(dtype) for key, value in weights.items()}
    save_file(
        {k: v.contiguous() for k, v in weights.items()}, str(path / "model.safetensors"), metadata={"format": "pt"}
    )
    values = json.loads((path / "config.json").read_text())
    if dtype is not None:
        values["dtype" if "dtype" in values else "torch_dtype"] = str(dtype).removeprefix("torch.")
    for key, value in (config or {}).items():
        if value is None:
            values.pop(key, None)
        else:
            values[key] = value
    for key in drop:
        values.pop(key, None)
    (path / "config.json").write_text(json.dumps(values, indent=1))
    return path


def distance_embeddings(tiny) -> dict[str, torch.Tensor]:
    """The `distance_embedding` weight of every layer that relative position scores read, seeded."""
    config = tiny.config
    gen = torch.Generator().manual_seed(7)
    shape = (2 * config.max_position_embeddings - 1, config.hidden_size // config.num_attention_heads)
    return {
        f"encoder.layer.{i}.attention.self.distance_embedding.weight": 0.02 * torch.randn(shape, generator=gen)
        for i in range(config.num_hidden_layers)
    }
