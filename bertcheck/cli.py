"""``bertcheck check PROPERTY --model SPEC --texts JSON``: rerun one property on one input.

Every failure message ends with this command, filled in with the shrunk input. Exit codes: 0 the
property holds, 1 it fails, 2 the command could not run (bad model, bad arguments).
"""

from __future__ import annotations

import argparse
import os
import sys

from bertcheck.checks import CHECKS
from bertcheck.invariances import INVARIANCES

DTYPES = ("float32", "float64")


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="bertcheck", description="Verify a BERT against the architecture.")
    commands = parser.add_subparsers(dest="command", required=True)
    check = commands.add_parser("check", help="run one property on one input")
    check.add_argument("property", choices=[*CHECKS, *INVARIANCES], help="the property to check")
    check.add_argument("--model", default="random:bert-base-uncased", help="model spec, as for --bert-model")
    check.add_argument("--dtype", choices=DTYPES, default="float32")
    check.add_argument("--device", default="cpu")
    check.add_argument("--texts", required=True, help='JSON list of sentences or [first, second] pairs: \'["a b"]\'')
    return parser


def main(argv: list[str] | None = None) -> int:
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    args = _parser().parse_args(argv)
    import torch

    from bertcheck.cases import Case
    from bertcheck.checks import verify
    from bertcheck.failures import PropertyFailure
    from bertcheck.invariances import Unavailable
    from bertcheck.models import ModelSpecError
    from bertcheck.strategies import available_devices
    from bertcheck.subject import Bert

    if args.device not in available_devices():
        print(f"bertcheck: --device {args.device!r} is not available here (have {available_devices()})", file=sys.stderr)
        return 2
    try:
        case = Case.from_json(args.texts, dtype=getattr(torch, args.dtype), device=args.device)
        bert = Bert.load(args.model)
    except (ValueError, ModelSpecError) as err:
        print(f"bertcheck: {err}", file=sys.stderr)
        return 2
    try:
        worst = verify(bert, case, args.property)
    except PropertyFailure as failure:
        print(failure.report())
        return 1
    except Unavailable as why:
        print(f"bertcheck: {args.property} cannot run here: {why}", file=sys.stderr)
        return 2
    print(f"{args.property}: holds on {args.model} ({args.dtype}, {args.device}); worst error {worst:.3g} of the tolerance")
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
