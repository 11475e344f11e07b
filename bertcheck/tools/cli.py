"""The command line.

- ``bertcheck check PROPERTY --model SPEC --texts JSON`` and ``bertcheck check-layer``: rerun one
  property on one input; every failure message ends with this command, filled in with the shrunk input.
- ``bertcheck verify --impl MODULE:ATTR`` (or ``--model-impl``): check a reimplementation, print a table.
- ``bertcheck baseline record|compare``: per-layer baselines for gating a transformers upgrade.
- ``bertcheck walk``: the seed notebook as a report, each step of each layer checked.
- ``bertcheck bench``: the suite's cost against one bare HF forward.

Exit codes: 0 the property holds, 1 it fails, 2 the command could not run (bad model, bad arguments,
a candidate that cannot be run).
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from bertcheck.inputs.devices import canonical, guard
from bertcheck.inputs.cases import SCALES
from bertcheck.properties.registry import LAYER, MODEL
from bertcheck.spec.tolerances import TOLERANCES

DTYPES = ("float32", "float64")  # what `verify` draws by default
# Every dtype with a row in the tolerance table: what `check` and `check-layer` (and so every reproduce
# line a property prints, bfloat16 `precision` included) accept.
CHECK_DTYPES = tuple(str(dtype).removeprefix("torch.") for dtype in TOLERANCES)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="bertcheck", description="Verify a BERT against the architecture.")
    commands = parser.add_subparsers(dest="command", required=True)
    check = commands.add_parser("check", help="run one property on one input")
    check.add_argument("property", choices=list(MODEL), help="the property to check")
    check.add_argument("--model", default="random:bert-base-uncased", help="model, as for --bert-model")
    check.add_argument("--dtype", choices=CHECK_DTYPES, default="float32")
    check.add_argument("--device", default="cpu")
    texts = check.add_mutually_exclusive_group(required=True)
    texts.add_argument("--texts", help="JSON list of sentences or [first, second] pairs: '[\"a b\"]'")
    texts.add_argument(
        "--texts-file",
        metavar="FILE",
        help="the same JSON in a file (- reads stdin): for texts too long for a command line",
    )
    layer = commands.add_parser("check-layer", help="run one layer property on generated hidden states")
    layer.add_argument("property", choices=list(LAYER), help="the layer property to check")
    layer.add_argument("--model", default="random:bert-base-uncased", help="model, as for --bert-model")
    for name, default in (("--layer", 0), ("--batch", 1), ("--tokens", 8), ("--pad", 0), ("--seed", 0)):
        layer.add_argument(name, type=int, default=default)
    layer.add_argument("--scale", choices=list(SCALES), default="unit", help="standard deviation of the states")
    layer.add_argument("--dtype", choices=CHECK_DTYPES, default="float32")
    layer.add_argument("--device", default="cpu")
    verify = commands.add_parser(
        "verify",
        help="check a reimplementation (a layer or model factory) against the spec",
        description="Run the properties on a candidate and print a table: property, "
        "result, worst error, shrunk counterexample. Exit 0 every property holds, 1 one "
        "fails, 2 the candidate cannot be run.",
    )
    which = verify.add_mutually_exclusive_group(required=True)
    which.add_argument(
        "--impl",
        metavar="MODULE:ATTR",
        help="a layer factory: factory(hf_layer, config) -> fn(hidden_states, attention_mask)",
    )
    which.add_argument(
        "--model-impl",
        metavar="MODULE:ATTR",
        help="a model factory: factory(hf_model) -> fn(input_ids, attention_mask, token_type_ids)",
    )
    verify.add_argument("--model", default="random:bert-base-uncased", help="model whose weights the candidate takes")
    verify.add_argument("--property", action="append", metavar="NAME", help="run only this property (repeatable)")
    verify.add_argument("--examples", type=int, default=25, help="examples per property (default 25)")
    verify.add_argument(
        "--dtype",
        action="append",
        choices=(*DTYPES, "float16", "bfloat16"),
        help="dtypes to draw (repeatable; default float32 and float64; float16 and bfloat16 judge a layer "
        "candidate against plain PyTorch's error in that dtype)",
    )
    verify.add_argument("--device", default="cpu")
    verify.add_argument(
        "--example", metavar="JSON", help="run this one example (as a failure's Reproduce line gives it)"
    )
    verify.add_argument(
        "--max-time",
        type=float,
        metavar="SECONDS",
        help="a time budget for the whole run, shared by the properties: one past its share draws no further "
        "example and says 'stopped at the time budget' (a failure found is reported as shrunk so far)",
    )
    baseline = commands.add_parser(
        "baseline", help="record a per-layer baseline, or compare the live model against one"
    )
    action = baseline.add_subparsers(dest="action", required=True)
    rec = action.add_parser("record", help="record every activation on the fixed probe set")
    rec.add_argument("--out", required=True, metavar="FILE", help="the baseline to write (safetensors)")
    rec.add_argument("--model", default="random:bert-base-uncased", help="model, as for --bert-model")
    rec.add_argument("--dtype", choices=DTYPES, default="float32")
    rec.add_argument("--attention", help="attention implementation (default: the model's own; eager on 4.33)")
    rec.add_argument("--update", action="store_true", help="overwrite FILE if it exists")
    rec.add_argument("--device", default="cpu", help="where the model runs (the baseline is stored on the CPU)")
    cmp_ = action.add_parser(
        "compare", help="compare the live model against a baseline: exit 0 within tolerance, 1 drift, 2 unusable"
    )
    cmp_.add_argument("file", metavar="FILE")
    cmp_.add_argument("--model", help="model (default: the one the baseline was recorded on)")
    cmp_.add_argument("--update", action="store_true", help="after comparing, rewrite FILE from the live model")
    cmp_.add_argument("--verbose", action="store_true", help="list every layer x activation, not only those that drift")
    cmp_.add_argument("--device", default="cpu", help="where the live model runs")
    walk = commands.add_parser("walk", help="the seed notebook as a report: each step of each layer, checked")
    walk.add_argument("--model", default="random:bert-base-uncased", help="model, as for --bert-model")
    walk.add_argument("--sentence", default="this is a test sentence")
    walk.add_argument("--device", default="cpu")
    walk.add_argument(
        "--plot", metavar="FILE.png", help="draw per-layer errors and LayerNorm statistics (needs matplotlib)"
    )
    bench = commands.add_parser(
        "bench", help="measure the suite against one bare HF forward; print a table, write JSON"
    )
    bench.add_argument(
        "--json", default="bench.json", metavar="FILE", help="where to write the results (default bench.json)"
    )
    bench.add_argument(
        "--model", action="append", help="model (repeatable; default random:bert-base-uncased and minilm)"
    )
    bench.add_argument("--quick", action="store_true", help="B1 at L8 and L32 only, one repeat: a smoke run")
    bench.add_argument("--no-suite", action="store_true", help="skip timing `pytest -n N properties`")
    bench.add_argument(
        "--no-split", action="store_true", help="skip timing the 4 parts of a split under the fleet profile"
    )
    bench.add_argument("--no-failing", action="store_true", help="skip timing the suite with a regression planted")
    bench.add_argument(
        "--workers",
        default="1,2",
        metavar="N,N,...",
        help="time the suite at each of these worker counts (default 1,2; 'auto' allowed)",
    )
    worst = commands.add_parser(
        "worst", help="one worst-error table from the --bert-worst-json files of several runs (a split's parts)"
    )
    worst.add_argument("files", nargs="+", metavar="FILE")
    worst.add_argument("--json", metavar="FILE", help="also write the combined table as JSON")
    return parser


def _worst(args) -> int:
    """`bertcheck worst FILE...`: exit 0, or 2 where a file cannot be read."""
    from bertcheck.properties import registry, worst

    try:
        merged, models, runs = worst.combined(args.files)
    except worst.WorstFileError as err:
        print(f"bertcheck worst: {err}", file=sys.stderr)
        return 2
    parts = sorted({str(r.get("part")) for r in runs if r.get("part")})
    print(
        f"bertcheck: worst error per property over {len(runs)} runs"
        + (f" (parts {', '.join(parts)})" if parts else "")
        + ", as a share of its tolerance (1 = the limit)"
    )
    for line in worst.table(merged, models, registry.rows()) or ["  (no property ran)"]:
        print(line)
    if args.json:
        worst.save(args.json, merged, models, {"parts": parts})
    return 0


def _bench(args) -> int:
    import json

    from bertcheck.tools import bench

    try:
        workers = [w if w == "auto" else int(w) for w in args.workers.split(",") if w]
    except ValueError:
        print(
            f"bertcheck bench: --workers {args.workers!r}: give worker counts separated by commas, "
            "such as 1,2,8 or auto",
            file=sys.stderr,
        )
        return 2
    options = {
        "models": args.model or bench.MODELS,
        "with_suite": not args.no_suite,
        "with_split": not args.no_split,
        "with_failing": not args.no_failing,
        "root": Path.cwd(),
        "workers": workers,
    }
    if args.quick:
        options.update(shapes=[(1, 8), (1, 32)], property_shapes=[(1, 32)], repeat=1)
    if (options["with_suite"] or options["with_split"] or options["with_failing"]) and not (
        Path.cwd() / "properties"
    ).is_dir():
        print(
            "bertcheck bench: run it from a bertcheck checkout (it times `pytest -n auto properties`), "
            "or pass --no-suite --no-split --no-failing",
            file=sys.stderr,
        )
        return 2
    try:
        result = bench.run(progress=lambda line: print(line, file=sys.stderr, flush=True), **options)
    except RuntimeError as err:
        print(f"bertcheck bench: {err}", file=sys.stderr)
        return 2
    Path(args.json).write_text(json.dumps(result, indent=1))
    for line in bench.table(result):
        print(line)
    print(f"\nwritten to {args.json}")
    return 0


def _baseline(args) -> int:
    from bertcheck.tools.baseline import BaselineError, compare, ensure_writable, load, record, update
    from bertcheck.subjects.models import ModelError
    from bertcheck.subjects.subject import Bert

    try:
        if args.action == "record":
            import torch

            ensure_writable(Path(args.out), update=args.update)  # before the model loads, let alone records
            bert = Bert.load(args.model)
            _say_notes(bert)
            meta = record(
                bert,
                Path(args.out),
                dtype=getattr(torch, args.dtype),
                attention=args.attention,
                update=args.update,
                device=args.device,
            )
            size = Path(args.out).stat().st_size / 2**20
            print(
                f"recorded {args.out} ({size:.1f} MiB): {meta['model']}, {meta['dtype']}, "
                f"attention {meta['attention']}, "
                f"transformers {meta['transformers']}, torch {meta['torch']}, {len(meta['probes'])} probes"
            )
            return 0
        baseline = load(Path(args.file))
        for note in baseline.notes:
            print(f"bertcheck: note: {note}", file=sys.stderr)
        if args.update:
            ensure_writable(Path(args.file), update=True)
        bert = Bert.load(args.model or baseline.meta["model"])
        _say_notes(bert)
        result = compare(baseline, bert, device=args.device)
        print(result.report(verbose=args.verbose))
        if args.update:
            update(result, bert)
            print(f"updated {args.file} from the live model")
            return 0
    except (BaselineError, ModelError, ValueError) as err:
        print(f"bertcheck baseline: {_said(err, args)}", file=sys.stderr)
        return 2
    return 1 if result.drifted else 0


def _walk(args) -> int:
    from bertcheck.subjects.models import ModelError
    from bertcheck.subjects.subject import Bert
    from bertcheck.tools.walk import plot, walk

    try:
        bert = Bert.load(args.model)
        _say_notes(bert)
        steps = walk(bert, args.sentence, device=args.device)
    except (ModelError, ValueError) as err:
        print(f"bertcheck walk: {_said(err, args)}", file=sys.stderr)
        return 2
    for line in steps.lines():
        print(line)
    if args.plot:
        try:
            plot(steps, Path(args.plot))
        except ImportError:
            print("bertcheck walk: --plot needs matplotlib: pip install 'bertcheck[plot]'", file=sys.stderr)
            return 2
        print(f"plot written to {args.plot}")
    return 1 if steps.failed else 0


def _verify(args) -> int:
    import torch

    from bertcheck.subjects.candidate import CandidateError, candidate_at
    from bertcheck.inputs.cases import Case, example_from_json
    from bertcheck.subjects.models import ModelError
    from bertcheck.subjects.subject import Bert
    from bertcheck.tools.verify import run

    path, kind = (args.impl, "layer") if args.impl else (args.model_impl, "model")
    dtypes = [getattr(torch, d) for d in (args.dtype or DTYPES)]
    try:
        if args.examples < 1:
            raise ValueError(f"--examples {args.examples}: need at least 1")
        if args.max_time is not None and not args.max_time > 0:
            raise ValueError(f"--max-time {args.max_time}: give a positive number of seconds")
        example = example_from_json(kind, args.example) if args.example else None
        candidate = candidate_at(kind, path)
        bert = Bert.once(args.model)
        _say_notes(bert)
        if isinstance(example, Case) and (why := bert.unsupported(example)):
            raise ValueError(why)
        report = run(
            candidate,
            bert,
            properties=args.property,
            examples=args.examples,
            dtypes=dtypes,
            device=args.device,
            example=example,
            max_time=args.max_time,
            progress=Progress(sys.stderr),
        )
    except (ValueError, ModelError, CandidateError) as err:
        print(f"bertcheck verify: {_said(err, args)}", file=sys.stderr)
        return 2
    print(report.text())
    return report.exit_code


class Progress:
    """`verify`'s progress on stderr, per property: examples done and the worst error so far. On a
    terminal one line rewritten in place; elsewhere (a CI log) a plain line at most every `every`
    seconds, and one when each property ends."""

    def __init__(self, stream, every: float = 10.0):
        self.stream, self.every = stream, every
        self.tty = stream.isatty()
        self.last, self.current = 0.0, None

    def __call__(self, result, finished: bool = False) -> None:
        import time

        line = f"bertcheck verify: {result.property}: {result.examples} examples, worst {result.worst_said}"
        if finished:
            line += f": {result.status}"
        now = time.monotonic()
        if self.tty:
            self.stream.write("\r\x1b[K" + line + ("\n" if finished else ""))
        elif finished or result is not self.current or now - self.last >= self.every:
            self.stream.write(line + "\n")
            self.last = now
        self.current = None if finished else result
        self.stream.flush()


def _texts(args) -> str:
    """--texts, or the contents of --texts-file (stdin for -)."""
    if args.texts is not None:
        return args.texts
    if args.texts_file == "-":
        return sys.stdin.read()
    try:
        return Path(args.texts_file).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as err:
        raise ValueError(f"--texts-file {args.texts_file}: cannot read it ({err})") from None


def _say_notes(bert) -> None:
    """What the audit of the checkpoint said (a float16 checkpoint, one token type): on stderr, never hidden."""
    for note in bert.notes:
        print(f"bertcheck: note: {bert.model_name}: {note}", file=sys.stderr)


def main(argv: list[str] | None = None) -> int:
    """Exit 0 holds, 1 a property fails or a baseline drifts, 2 anything that kept the command from
    running; an unforeseen crash is a 2 as well, never a 1 that would read as a failed property."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    args = _parser().parse_args(argv)
    try:
        with guard():  # bertcheck's own code names the device of every tensor it makes (bertcheck.inputs.devices)
            return _main(args)
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:  # `bertcheck verify ... | head`: the reader left; nothing is wrong with bertcheck
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # no second error at interpreter exit
        return 141  # what a shell reports for a command that SIGPIPE ended
    except Exception as err:  # noqa: BLE001 - a bug of bertcheck's own: say so, keep the traceback for the report
        import traceback

        traceback.print_exc(file=sys.stderr)
        print(
            f"bertcheck: internal error ({type(err).__name__}: {err}); this is a bertcheck bug, please report it "
            f"with the traceback above",
            file=sys.stderr,
        )
        return 2


def _example(args):
    """`check` and `check-layer`: the model and the one example the arguments name (ValueError saying
    what is wrong with them)."""
    import torch

    from bertcheck.inputs.cases import Case, LayerCase
    from bertcheck.subjects.subject import Bert

    dtype = getattr(torch, args.dtype)
    if args.command == "check":
        case = Case.from_json(_texts(args), dtype=dtype, device=args.device)
    else:
        fields = {name: getattr(args, name) for name in ("layer", "batch", "tokens", "pad", "scale", "seed")}
        case = LayerCase(**fields, dtype=dtype, device=args.device)  # validated: a ValueError names what is wrong
    bert = Bert.load(args.model)
    _say_notes(bert)
    n_layers = bert.config.num_hidden_layers
    if args.command == "check-layer" and not 0 <= args.layer < n_layers:
        raise ValueError(f"--layer {args.layer}: {args.model} has layers 0 to {n_layers - 1}")
    if args.command == "check" and (why := bert.unsupported(case)):
        raise ValueError(why)
    return bert, case


def _said(err: Exception, args) -> str:
    """An error in the words of the command line: a model that cannot be checked is said of `--model`,
    the option typed here (or of the baseline, whose model was not typed), not of pytest's --bert-model."""
    from bertcheck.subjects.models import ModelError

    if not isinstance(err, ModelError):
        return str(err)
    return err.said_as("--model" if getattr(args, "model", None) else "the baseline's model")


def _main(args) -> int:
    device = getattr(args, "device", None)  # every command that runs a model takes one
    if device is not None:
        try:
            args.device = canonical(device)  # cpu:0 is cpu; cuda:0 is available where cuda is
        except ValueError as err:
            print(f"bertcheck: {err}", file=sys.stderr)
            return 2
    if args.command == "baseline":
        return _baseline(args)
    if args.command == "walk":
        return _walk(args)
    if args.command == "worst":
        return _worst(args)
    if args.command == "bench":
        return _bench(args)
    if args.command == "verify":
        return _verify(args)
    from bertcheck.properties.failures import PropertyFailure, Unavailable
    from bertcheck.subjects.models import ModelError
    from bertcheck.properties.registry import run_layer_property, run_model_property

    try:
        bert, case = _example(args)
    except (ValueError, OSError, ModelError) as err:
        print(f"bertcheck: {_said(err, args)}", file=sys.stderr)
        return 2
    try:
        if args.command == "check":
            worst = run_model_property(bert, case, args.property)
        else:
            worst = run_layer_property(bert, case, args.property)
    except PropertyFailure as failure:
        print(failure.report())
        return 1
    except Unavailable as why:
        print(f"bertcheck: {args.property} cannot run here: {why}", file=sys.stderr)
        return 2
    where = f"{args.model} ({args.dtype}, {args.device})"
    print(f"{args.property}: holds on {where}; worst error {worst:.3g} of the tolerance")
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
