"""The code is formatted by ruff at the project's 120 characters, and pyflakes finds nothing."""

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PATHS = ["bertcheck", "tests", "properties", "conftest.py"]


def _ruff(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "ruff", *args, *PATHS], cwd=ROOT, capture_output=True, text=True)


def test_the_code_is_as_the_formatter_leaves_it():
    done = _ruff("format", "--check")
    assert done.returncode == 0, done.stdout + done.stderr


def test_no_line_is_over_the_limit_and_pyflakes_finds_nothing():
    done = _ruff("check", "--output-format", "concise")
    assert done.returncode == 0, done.stdout + done.stderr


def test_no_code_opts_out_of_the_formatter():
    files = [p for path in map(ROOT.joinpath, PATHS) for p in (path.rglob("*.py") if path.is_dir() else [path])]
    skipped = [str(p) for p in files if "# fmt: " + "skip" in p.read_text()]
    assert skipped == []
