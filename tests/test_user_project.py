"""bertcheck as a user's project meets it: a non-editable install of the package (not this checkout),
real pytest subprocesses in a project of their own. Asked for, the plugin runs the properties it ships;
not asked for, it leaves the project exactly as it is without bertcheck."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from bertcheck.inputs.profiles import PROFILES
from bertcheck.inputs.shards import shards_for

ROOT = Path(__file__).resolve().parents[1]
DEV_SHARDS = len(shards_for(PROFILES["dev"]["max_examples"]))

# A user's own layer, in plain torch, as they would write one: the spec, and the same with tanh GELU.
USER_LAYERS = """
import math

import torch.nn.functional as F


def _layer(hf_layer, config, gelu="none"):
    a, nh, eps = hf_layer.attention, config.num_attention_heads, config.layer_norm_eps

    def norm(x, ln):
        return F.layer_norm(x, x.shape[-1:], ln.weight, ln.bias, eps)

    def fn(h, mask):
        B, T, H = h.shape
        heads = lambda lin: lin(h).view(B, T, nh, H // nh).transpose(1, 2)  # noqa: E731
        q, k, v = heads(a.self.query), heads(a.self.key), heads(a.self.value)
        scores = (q @ k.transpose(-1, -2) / math.sqrt(H // nh)).masked_fill(
            mask[:, None, None, :] == 0, float(torch.finfo(h.dtype).min)
        )
        z = (scores.softmax(-1) @ v).transpose(1, 2).reshape(B, T, H)
        mid = norm(a.output.dense(z) + h, a.output.LayerNorm)
        up = F.gelu(hf_layer.intermediate.dense(mid), approximate=gelu)
        return norm(hf_layer.output.dense(up) + mid, hf_layer.output.LayerNorm)

    return fn


def good(hf_layer, config):
    return _layer(hf_layer, config)


def tanh_gelu(hf_layer, config):
    return _layer(hf_layer, config, gelu="tanh")
""".replace("import torch.nn.functional as F", "import torch\nimport torch.nn.functional as F")

# A project's own Hypothesis test, with no BERT in it, and a conftest that registers its own "ci"
# profile and loads its profile from an environment variable, as Hypothesis's docs suggest.
UNRELATED = """
from hypothesis import given, settings, strategies as st

@given(st.integers())
def test_unrelated(n):
    s = settings.default
    print("SETTINGS", settings.get_current_profile_name(), s.max_examples, s.deadline, s.derandomize,
          s.database is None)
"""
UNRELATED_CONFTEST = """
import os
from hypothesis import settings

settings.register_profile("ci", max_examples=7)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "default"))
"""


@pytest.fixture(scope="module")
def installed(tmp_path_factory) -> Path:
    """bertcheck built as a wheel and installed (not editable) into a folder of its own."""
    # Built from a copy of the sources: setuptools writes build/ and *.egg-info into the tree it builds,
    # and two xdist workers building the checkout at once broke each other's build (CI, stop 27).
    source, wheels, target = (tmp_path_factory.mktemp(name) for name in ("source", "wheel", "site"))
    for name in ("pyproject.toml", "README.md"):
        shutil.copy2(ROOT / name, source / name)
    for name in ("bertcheck", "properties"):
        shutil.copytree(ROOT / name, source / name, ignore=shutil.ignore_patterns("__pycache__"))
    pip = [sys.executable, "-m", "pip", "--disable-pip-version-check", "-q"]
    _must(subprocess.run([*pip, "wheel", "--no-deps", "--no-build-isolation", "-w", wheels, source], **TEXT))
    (wheel,) = wheels.glob("bertcheck-*.whl")
    _must(subprocess.run([*pip, "install", "--no-deps", "--no-compile", "--target", target, wheel], **TEXT))
    return target


TEXT = dict(capture_output=True, text=True)


def _must(done: subprocess.CompletedProcess) -> None:
    """A step of the install that failed stops the test with what it printed, not a bare exit status."""
    if done.returncode:
        pytest.fail(f"{' '.join(map(str, done.args))} exited {done.returncode}:\n{done.stdout}{done.stderr}")


def _env(installed: Path, **extra) -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("BERTCHECK_", "PYTEST_", "HYPOTHESIS_"))}
    for var in ("CI", "GITHUB_ACTIONS"):  # a laptop unless a test says otherwise
        env.pop(var, None)
    env.update(PYTHONPATH=str(installed), HF_HUB_OFFLINE="1", **extra)
    return env


def _pytest(project: Path, installed: Path, *args, **env) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", *args],
        cwd=project,
        env=_env(installed, **env),
        capture_output=True,
        text=True,
        timeout=600,
    )


def test_the_installed_package_is_what_the_subprocesses_run(installed, tmp_path):
    done = subprocess.run(
        [sys.executable, "-c", "import bertcheck.plugin, bertcheck.suite as p; print(p.__path__[0])"],
        cwd=tmp_path,
        env=_env(installed),
        capture_output=True,
        text=True,
        check=True,
    )
    assert Path(done.stdout.strip()) == installed / "bertcheck" / "suite"


@pytest.fixture
def project(tmp_path) -> Path:
    (tmp_path / "user_layers.py").write_text(USER_LAYERS)
    (tmp_path / "test_mine.py").write_text("def test_mine():\n    assert 1 + 1 == 2\n")
    return tmp_path


def test_in_a_users_project_bert_impl_runs_the_shipped_properties_and_a_good_layer_passes(project, installed):
    args = ("--bert-model", "random:tiny", "--hypothesis-profile", "dev", "-k", "candidate_layer or test_mine")
    done = _pytest(project, installed, "--bert-impl", "user_layers:good", *args)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-2000:]
    assert f"{7 * DEV_SHARDS + 1} passed" in done.stdout  # the 7 layer-candidate properties, and the project's test
    assert "candidate layer-equivalence" in done.stdout  # the worst-error table has the candidate's rows


def test_in_a_users_project_bert_impl_with_a_broken_layer_is_red_naming_the_candidate(project, installed):
    args = ("--bert-model", "random:tiny", "--hypothesis-profile", "dev", "-k", "equals_the_spec", "-x")
    done = _pytest(project, installed, "--bert-impl", "user_layers:tanh_gelu", *args)
    assert done.returncode == 1, done.stdout[-3000:] + done.stderr[-2000:]
    assert "candidate: user_layers:tanh_gelu (layer factory)" in done.stdout
    assert re.search(r"failed at layer \d+, activation 'blocks\.\d+\.resid_post'", done.stdout), done.stdout[-3000:]
    assert "FAILED test_candidate.py::test_the_candidate_layer_equals_the_spec" in done.stdout


def test_bert_impl_with_test_paths_that_hold_no_property_is_red_not_green(project, installed):
    done = _pytest(project, installed, "test_mine.py", "--bert-impl", "user_layers:good", "--bert-model", "random:tiny")
    assert done.returncode == 1, done.stdout[-3000:]
    assert "1 passed" in done.stdout
    assert "bertcheck: --bert-impl, --bert-model given, but no test of this run checked it" in done.stdout


def _header_and_settings(out: str) -> tuple[list[str], list[str]]:
    lines = out.splitlines()
    end = next(i for i, x in enumerate(lines) if "collected" in x or "created" in x)
    header = [line for line in lines[:end] if not line.startswith(("plugins:", "platform", "cachedir"))]
    return header, [line for line in lines if "SETTINGS" in line or re.search(r"created: \d+/\d+ workers", line)]


@pytest.mark.parametrize("machine", ["laptop", "ci"])
@pytest.mark.parametrize("profile_variable", [None, "default", "ci"])
def test_a_project_that_does_not_ask_for_bertcheck_runs_exactly_as_without_it(
    tmp_path, installed, machine, profile_variable
):
    """Its Hypothesis settings (its own "ci" profile included), its header and `-n auto`'s worker count,
    with bertcheck installed and with `-p no:bertcheck`. BERTCHECK_WORKER_MEMORY is set so large that
    bertcheck's memory-based `-n auto` would start one worker: it must not be asked."""
    (tmp_path / "conftest.py").write_text(UNRELATED_CONFTEST)
    (tmp_path / "test_unrelated.py").write_text(UNRELATED)
    # BERTCHECK_WORKER_MEMORY does not ask for bertcheck: it sizes bertcheck's workers once asked.
    env = {"BERTCHECK_WORKER_MEMORY": "1000"} | ({"CI": "true"} if machine == "ci" else {})
    env |= {"HYPOTHESIS_PROFILE": profile_variable} if profile_variable else {}
    runs = {}
    for plugin in ((), ("-p", "no:bertcheck")):
        for args in (("-s",), ("-s", "-n", "auto")):
            done = _pytest(tmp_path, installed, *plugin, *args, **env)
            assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
            runs[plugin, args] = _header_and_settings(done.stdout)
            if plugin:
                continue
            assert "bertcheck" not in "\n".join(runs[plugin, args][0])
    for args in (("-s",), ("-s", "-n", "auto")):
        assert runs[(), args] == runs[("-p", "no:bertcheck"), args]
    assert any("SETTINGS" in line for line in runs[(), ("-s",)][1])


def test_asked_for_bertcheck_sizes_workers_by_memory(tmp_path, installed):
    """The other side of the test above: with a --bert-* option the same variable starts one worker."""
    (tmp_path / "test_unrelated.py").write_text(UNRELATED)
    args = ("test_unrelated.py", "-n", "auto", "--bert-model", "random:tiny")
    done = _pytest(tmp_path, installed, *args, BERTCHECK_WORKER_MEMORY="1000")
    assert "bertcheck: -n auto: 1 workers" in done.stdout, done.stdout[-2000:]


def test_bertchecks_items_run_under_its_profile_and_the_projects_own_tests_under_theirs(tmp_path, installed):
    (tmp_path / "test_both.py").write_text(
        UNRELATED
        + textwrap.dedent(
            """
            from bertcheck.inputs.strategies import cases

            @given(case=cases(long=False))
            def test_bert(bert, case):
                own = test_bert._bertcheck_settings
                print("BERT", own.max_examples, own.deadline, own.derandomize)
            """
        )
    )
    for args, env, unrelated, bert in (
        ((), {}, "SETTINGS default 100 0:00:00.200000 False False", "BERT 25 None True"),
        ((), {"BERTCHECK_PROFILE": "dev"}, "SETTINGS default 100 0:00:00.200000 False False", "BERT 10 None False"),
        # A profile the user names on the command line is the whole run's: Hypothesis's plugin loads it.
        (("--hypothesis-profile", "thorough"), {}, "SETTINGS thorough 250 None True True", "BERT 250 None True"),
    ):
        done = _pytest(tmp_path, installed, "test_both.py", "-s", "--bert-model", "random:tiny", *args, **env)
        assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
        assert unrelated in done.stdout and bert in done.stdout, (args, env, done.stdout[-2000:])
