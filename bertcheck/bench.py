"""`bertcheck bench`: the suite against its physical floor, one bare HF forward, on this machine.

Measures, in one run and on one torch thread (what each xdist worker gets):

- the bare HF forward (`output_hidden_states=True`, float32, eval, no grad) for each model at batch
  1 and 8 and lengths 8, 32, 128, 512: the baseline, as the least of `repeat` runs after a warm-up;
- the per-example cost of each property on the same input, as a ratio to that bare forward, and
  how many HF and reference forwards one example runs (its floor: a metamorphic property compares
  two or more forwards by definition);
- model load time (after the first load, which builds the cache) and, from a timed
  ``pytest -n auto properties`` run under the `ci` profile: wall time, workers, examples per property,
  examples per second and the peak memory of each worker.

Prints a table and writes JSON. Timings are never asserted by a test: they are measured here.
"""

from __future__ import annotations

import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch

SHAPES = [(b, t) for b in (1, 8) for t in (8, 32, 128, 512)]
# Property costs at these shapes: the two the goal names (B1 and B8 at L32), a longer and the longest.
PROPERTY_SHAPES = [(1, 32), (8, 32), (1, 128), (1, 512)]
MODELS = ("random:bert-base-uncased", "minilm")
# Properties that run float32 forwards only; the goal of <= 2.5x a bare forward is theirs.
# precision (a float64 reference, bfloat16 copies) and gradients (two backwards) are measured too,
# but are not float32-forward properties.
FLOAT32 = ("residual-identity", "layernorm", "intermediate-width", "hidden-states", "attention-pattern", "eager-sdpa",
           "padding", "batching", "defaults", "determinism", "dropout", "output-options", "padded-row")  # fmt: skip
GOAL_RATIO = 2.5


def _least(fn, repeat: int) -> float:
    fn()  # warm-up: first-call allocations and lazy initialisation are not the steady state
    best = float("inf")
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - start)
    return best


def _case(batch: int, tokens: int):
    from bertcheck.cases import Case

    # "the" is one WordPiece token: [CLS] + (tokens - 2) x "the" + [SEP] is exactly `tokens` long.
    return Case((" ".join(["the"] * (tokens - 2)),) * batch)


def bare_forward(bert, batch: int, tokens: int, repeat: int) -> float:
    model = bert.model(torch.float32, "cpu")
    inputs = bert.encode(_case(batch, tokens))
    assert inputs["input_ids"].shape == (batch, tokens), inputs["input_ids"].shape

    def run():
        with torch.no_grad():
            model(**inputs, output_hidden_states=True)

    return _least(run, repeat)


def property_cost(bert, key: str, batch: int, tokens: int, repeat: int) -> float | None:
    from bertcheck.checks import verify
    from bertcheck.failures import Unavailable

    case = _case(batch, tokens)
    try:
        return _least(lambda: verify(bert, case, key), repeat)
    except Unavailable:
        return None


def forwards(bert, key: str, batch: int, tokens: int) -> tuple[float, float] | None:
    """(HF forwards, reference forwards) one example of property `key` runs, counted in layers run
    divided by the model's layers: the floor of its cost, which the ratio is read against."""
    from bertcheck.checks import verify
    from bertcheck.failures import Unavailable
    from bertcheck.reference import ReferenceBert

    counts = {"hf": 0, "ref": 0}

    def hf_hook(module, args):
        if type(module).__name__ == "BertLayer":
            counts["hf"] += 1

    original = ReferenceBert.layer

    def counted(self, *args, **kwargs):
        counts["ref"] += 1
        return original(self, *args, **kwargs)

    handle = torch.nn.modules.module.register_module_forward_pre_hook(hf_hook)
    ReferenceBert.layer = counted
    try:
        verify(bert, _case(batch, tokens), key)
    except Unavailable:
        return None
    finally:
        handle.remove()
        ReferenceBert.layer = original
    n = bert.config.num_hidden_layers
    return counts["hf"] / n, counts["ref"] / n


def load_time(spec: str, cache_dir: Path, repeat: int = 3) -> tuple[float, float]:
    """(first load, least of later loads) in this process: the first builds the cache if needed."""
    from bertcheck.subject import Bert

    start = time.perf_counter()
    Bert.load(spec, cache_dir)
    first = time.perf_counter() - start
    later = min(_timed(lambda: Bert.load(spec, cache_dir)) for _ in range(repeat))
    return first, later


def _timed(fn) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def suite(root: Path) -> dict:
    """Run ``pytest -n auto properties`` under the ci profile, as a user would; time it and read its stats."""
    with tempfile.TemporaryDirectory() as tmp:
        stats_file = Path(tmp) / "stats.json"
        env = {**os.environ, "BERTCHECK_PROFILE": "ci", "BERTCHECK_STATS": str(stats_file), "HF_HUB_OFFLINE": "1"}
        start = time.perf_counter()
        proc = subprocess.run([sys.executable, "-m", "pytest", "-n", "auto", "-q", "properties"], cwd=root, env=env,
                              capture_output=True, text=True)  # fmt: skip
        wall = time.perf_counter() - start
        if not stats_file.exists():
            raise RuntimeError(f"the suite wrote no statistics (exit {proc.returncode}):\n{proc.stdout[-3000:]}{proc.stderr[-2000:]}")
        stats = json.loads(stats_file.read_text())
    summary = proc.stdout.strip().splitlines()[-1] if proc.stdout.strip() else ""
    examples = {f"{c} [{m}]": n for c, m, n in stats["examples"]}
    total = sum(examples.values())
    return {
        "command": "pytest -n auto -q properties (BERTCHECK_PROFILE=ci)",
        "exit_code": proc.returncode,
        "summary": summary,
        "wall_s": wall,
        "workers": len(stats["peak_rss_mib"]),
        "examples_total": total,
        "examples_per_s": total / wall,
        "examples_per_property_min": min(examples.values(), default=0),
        "examples_per_property_max": max(examples.values(), default=0),
        "examples": examples,
        "peak_rss_mib_per_worker": stats["peak_rss_mib"],
    }


def run(*, models=MODELS, shapes=SHAPES, property_shapes=PROPERTY_SHAPES, properties=None, repeat: int = 3,
        with_suite: bool = True, root: Path = Path("."), cache_dir: Path | None = None, progress=print) -> dict:  # fmt: skip
    from bertcheck.checks import CHECKS
    from bertcheck.invariances import INVARIANCES
    from bertcheck.subject import Bert

    torch.set_num_threads(1)  # what each xdist worker runs with
    keys = list(properties) if properties is not None else [*CHECKS, *INVARIANCES]
    cache_dir = cache_dir or Path(tempfile.mkdtemp(prefix="bertcheck-bench-"))
    result = {
        "machine": {"platform": platform.platform(), "processor": platform.processor() or platform.machine(),
                    "cpus": os.cpu_count(), "python": platform.python_version(), "torch": torch.__version__,
                    "transformers": __import__("transformers").__version__, "threads": 1},  # fmt: skip
        "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        "models": {},
    }
    for spec in models:
        first, later = load_time(spec, cache_dir)
        bert = Bert.load(spec, cache_dir)
        entry = {"load_first_s": first, "load_s": later, "bare_s": {}, "ratio": {}, "forwards": {}}
        for b, t in shapes:
            entry["bare_s"][f"B{b} L{t}"] = bare_forward(bert, b, t, repeat if t < 512 or b == 1 else 1)
            progress(f"{spec} bare B{b} L{t}: {entry['bare_s'][f'B{b} L{t}']:.3f} s")
        for b, t in property_shapes:
            bare = entry["bare_s"].get(f"B{b} L{t}") or bare_forward(bert, b, t, repeat)
            row = {}
            for key in keys:
                cost = property_cost(bert, key, b, t, max(1, repeat - 1))
                row[key] = None if cost is None else cost / bare
                if (b, t) == property_shapes[0]:
                    entry["forwards"][key] = forwards(bert, key, b, t)
            entry["ratio"][f"B{b} L{t}"] = row
            progress(f"{spec} properties B{b} L{t}: " + ", ".join(f"{k} {v:.2f}x" for k, v in row.items() if v is not None))
        result["models"][spec] = entry
    if with_suite:
        progress("timing pytest -n auto properties ...")
        result["suite"] = suite(root)
    result["goals"] = goals(result)
    return result


def goals(result: dict) -> dict:
    """Each goal of the benchmark issue: met or not, with the number that decides it."""
    worst_f32 = max((v for m in result["models"].values() for row in m["ratio"].values()
                     for k, v in row.items() if k in FLOAT32 and v is not None), default=None)  # fmt: skip
    load = max((m["load_s"] for m in result["models"].values()), default=None)
    out = {
        "float32 property <= 2.5x bare forward": {"worst": worst_f32, "met": worst_f32 is not None and worst_f32 <= GOAL_RATIO},
        "model load <= 1 s after the first": {"worst": load, "met": load is not None and load <= 1.0},
    }
    s = result.get("suite")
    if s:
        out["ci run <= 3 min"] = {"worst": s["wall_s"], "met": s["wall_s"] <= 180}
        out[">= 50 examples per property"] = {"worst": s["examples_per_property_min"], "met": s["examples_per_property_min"] >= 50}
    return out


def table(result: dict) -> list[str]:
    m = result["machine"]
    lines = [f"bertcheck bench, {result['date']}: {m['platform']}, {m['cpus']} CPUs, torch {m['torch']}, "
             f"transformers {m['transformers']}, 1 torch thread"]  # fmt: skip
    for spec, entry in result["models"].items():
        lines += ["", f"{spec}: load {entry['load_s']:.2f} s (first {entry['load_first_s']:.2f} s)",
                  "  bare forward, seconds:  " + "  ".join(f"{k} {v:.3f}" for k, v in entry["bare_s"].items())]  # fmt: skip
        shapes = list(entry["ratio"])
        if shapes:
            keys = list(next(iter(entry["ratio"].values())))
            lines.append("  property, x bare forward".ljust(30) + "".join(f"{s:>10}" for s in shapes) + "   forwards (HF + ref)")
            for key in keys:
                cells = "".join(f"{'n/a' if entry['ratio'][s][key] is None else format(entry['ratio'][s][key], '.2f'):>10}" for s in shapes)
                count, first = entry["forwards"].get(key), entry["ratio"][shapes[0]][key]
                floor = "" if count is None else f"   {count[0]:g} + {count[1]:g}"
                if count is not None and first is not None and sum(count):
                    floor += f" ({first / sum(count):.2f}x per forward at {shapes[0]})"
                lines.append(f"  {key}{'' if key in FLOAT32 else ' *'}".ljust(30) + cells + floor)
    s = result.get("suite")
    if s:
        lines += ["", f"suite: {s['command']}: {s['wall_s']:.0f} s wall, {s['workers']} workers, {s['examples_total']} examples "
                  f"({s['examples_per_s']:.2f}/s), {s['examples_per_property_min']}-{s['examples_per_property_max']} per property "
                  f"and model; peak RSS per worker " + ", ".join(f"{r / 1024:.1f} GiB" for r in s["peak_rss_mib_per_worker"]),
                  f"  pytest: {s['summary']}"]  # fmt: skip
    lines += ["", "goals (* marks properties outside the float32 goal):"]
    for name, g in result["goals"].items():
        worst = g["worst"]
        lines.append(f"  {'met    ' if g['met'] else 'MISSED '} {name}: {worst if isinstance(worst, int) else format(worst or 0, '.3g')}")
    return lines
