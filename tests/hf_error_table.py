"""HF's own error against the float64 reference, per dtype and attention kernel: the numbers behind the
tolerance table's rows and the half-precision rule (`bertcheck.spec.tolerances`, `bertcheck.spec.low_precision`).

    python -m tests.hf_error_table --device cuda [--model random:bert-base-uncased] [--json FILE]

For each dtype and attention implementation (eager; sdpa as torch picks; sdpa with each kernel forced:
math, efficient, flash, cudnn) HF's model runs the same padded batch (lengths 7, 64, 200 and 512 by
default) with every hidden state returned. Each hidden state is compared at real tokens, as
max |HF - ref| / (1 + |ref|), with the float64 reference over the same weights (the dtype's own weights
upcast, exactly):

- per layer: the reference layer fed HF's own hidden state before it, so the error is that layer's;
- chained: the reference run from the same ids through every layer, so the error is what piles up.

A kernel that refuses the input (flash takes no padding mask; no half-precision kernel takes float32)
is reported as refused, with torch's reason, never skipped in silence.
"""

from __future__ import annotations

import argparse
import json
import math
import warnings
from contextlib import nullcontext

import torch

from bertcheck.spec.names import layer_name
from bertcheck.spec.reference import ReferenceBert
from bertcheck.subjects.subject import Bert

DTYPES = {"float32": torch.float32, "float16": torch.float16, "bfloat16": torch.bfloat16}
KERNELS = ("math", "efficient", "flash", "cudnn")


def forced_kernel(name: str):
    """The context under which torch's scaled_dot_product_attention runs on kernel `name` alone."""
    from torch.nn.attention import SDPBackend, sdpa_kernel

    backend = {
        "math": SDPBackend.MATH,
        "efficient": SDPBackend.EFFICIENT_ATTENTION,
        "flash": SDPBackend.FLASH_ATTENTION,
        "cudnn": getattr(SDPBackend, "CUDNN_ATTENTION", None),
    }[name]
    if backend is None:
        raise RuntimeError("this torch has no cudnn attention kernel")
    return sdpa_kernel(backend)


def batch(bert: Bert, lengths: list[int], device: str, seed: int = 0) -> dict[str, torch.Tensor]:
    """Random word ids between [CLS] and [SEP], one row per length, padded to the longest."""
    gen = torch.Generator(device="cpu").manual_seed(seed)
    tok = bert.tokenizer
    width = max(lengths)
    ids = torch.full((len(lengths), width), tok.pad_token_id, dtype=torch.long, device="cpu")
    mask = torch.zeros((len(lengths), width), dtype=torch.long, device="cpu")
    for row, n in enumerate(lengths):
        words = torch.randint(1000, bert.config.vocab_size, (n - 2,), generator=gen, device="cpu")
        ids[row, :n] = torch.cat(
            [torch.tensor([tok.cls_token_id], device="cpu"), words, torch.tensor([tok.sep_token_id], device="cpu")]
        )
        mask[row, :n] = 1
    return {
        "input_ids": ids.to(device),
        "attention_mask": mask.to(device),
        "token_type_ids": torch.zeros_like(ids).to(device),
    }


def _error(actual: torch.Tensor, expected: torch.Tensor, real: torch.Tensor) -> float:
    diff = (actual.double() - expected).abs() / (1 + expected.abs())
    return diff[real].max().item()


def measure(bert: Bert, dtype: torch.dtype, attention: str, inputs: dict, device: str) -> dict:
    """{"per_layer": worst over layers, "chained": worst over hidden states, "by_layer": [...]}, or
    {"refused": why} where the kernel does not take this input."""
    implementation, _, kernel = attention.partition(":")
    with bert.attention(implementation, dtype, device) as model:
        try:
            with warnings.catch_warnings(record=True) as said, forced_kernel(kernel) if kernel else nullcontext():
                warnings.simplefilter("always")
                with torch.no_grad():
                    out = model(**inputs, output_hidden_states=True)
        except RuntimeError as e:  # torch says why a kernel refused in its warnings, then raises
            why = [str(w.message).strip().splitlines()[0] for w in said] + [str(e).strip().splitlines()[0]]
            return {"refused": "; ".join(why)[:400]}
        ref = ReferenceBert.from_hf(model, dtype=torch.float64, device=device)
    states = out.hidden_states
    mask, real = inputs["attention_mask"], inputs["attention_mask"].bool()
    with torch.no_grad():
        chained = ref.forward(inputs["input_ids"], mask, inputs["token_type_ids"])
        by_layer, by_depth = [], [_error(states[0], chained["embed.out"], real)]
        for i in range(ref.n_layers):
            alone = ref.layer(i, states[i].double(), mask)[layer_name(i, "resid_post")]
            by_layer.append(_error(states[i + 1], alone, real))
            by_depth.append(_error(states[i + 1], chained[layer_name(i, "resid_post")], real))
    finite = all(torch.isfinite(s[real]).all().item() for s in states)
    return {
        "per_layer": max(by_layer),
        "chained": max(by_depth),
        "by_layer": by_layer,
        "by_depth": by_depth,
        "finite": finite,
    }


def attentions(device: str) -> list[str]:
    forced = [f"sdpa:{k}" for k in KERNELS] if device.startswith("cuda") else ["sdpa:math"]
    return ["eager", "sdpa", *forced]


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="random:bert-base-uncased")
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--lengths", default="7,64,200,512")
    parser.add_argument("--dtype", action="append", choices=list(DTYPES))
    parser.add_argument("--json")
    args = parser.parse_args(argv)
    bert = Bert.load(args.model)
    inputs = batch(bert, [int(n) for n in args.lengths.split(",")], args.device)
    result = {"model": args.model, "device": args.device, "lengths": args.lengths, "torch": torch.__version__}
    if args.device.startswith("cuda"):
        result["card"] = torch.cuda.get_device_name(args.device)
    rows = result["rows"] = {}
    print(
        f"{'dtype':9} {'attention':15} {'per layer':>10} {'chained':>10}  (max |HF - ref| / (1 + |ref|), real tokens)"
    )
    for dtype_name in args.dtype or list(DTYPES):
        for attention in attentions(args.device):
            row = measure(bert, DTYPES[dtype_name], attention, inputs, args.device)
            rows[f"{dtype_name} {attention}"] = row
            if "refused" in row:
                print(f"{dtype_name:9} {attention:15} refused: {row['refused']}")
            else:
                flag = "" if row["finite"] and math.isfinite(row["chained"]) else "  NOT FINITE"
                print(f"{dtype_name:9} {attention:15} {row['per_layer']:10.2e} {row['chained']:10.2e}{flag}")
        bert.release_copies()
    if args.json:
        with open(args.json, "w") as f:
            json.dump(result, f, indent=1)
    return result


if __name__ == "__main__":
    main()
