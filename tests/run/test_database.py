"""Runs spread over machines, end to end in real pytest subprocesses: the fleet profile's seeds
(`bertcheck.run.split`) and the shared example database (`bertcheck.run.database`) against a real redis-server
started here. Without redis-server on PATH the database tests skip, unless BERTCHECK_REQUIRE_REDIS is
set (CI sets it: there they must run)."""

import json
import os
import shutil
import socket
import subprocess
import time

import pytest

REDIS_SERVER = shutil.which("redis-server")

DRAWING_PROPERTY = """
import json, os
from hypothesis import given, settings
from bertcheck.properties.registry import run_model_property
from bertcheck.inputs.strategies import cases

@settings(max_examples=7)
@given(case=cases(long=False, max_batch=2))
def test_hidden_states(bert, case):
    with open(os.environ["DRAWN_LOG"], "a") as f:  # every input this item runs, in order
        f.write(json.dumps([list(case.texts), str(case.dtype)]) + "\\n")
    run_model_property(bert, case, "hidden-states")
"""

# A planted bug that only inputs longer than 6 tokens meet: the counterexample is found, then shrunk.
PLANTED = """
import os
import pytest

@pytest.fixture(autouse=True)
def long_inputs_break_layer_0(bert):
    out = bert.model().encoder.layer[0].output
    if os.environ.get("PLANT") != "1" or type(out).__name__ == "LongInputsBreak":
        return
    forward = type(out).forward
    def broken(self, hidden_states, input_tensor):
        y = forward(self, hidden_states, input_tensor)
        return y + 0.5 if y.shape[1] > 6 else y
    out.__class__ = type("LongInputsBreak", (type(out),), {"forward": broken})
"""


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def redis_server(tmp_path):
    """A real redis-server on a free localhost port, with no persistence: (url, process)."""
    if REDIS_SERVER is None:
        if os.environ.get("BERTCHECK_REQUIRE_REDIS"):
            pytest.fail("BERTCHECK_REQUIRE_REDIS is set and redis-server is not on PATH")
        pytest.skip("redis-server is not on PATH (Debian: apt-get install redis-server)")
    import redis

    port = _free_port()
    proc = subprocess.Popen(
        [REDIS_SERVER, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
        cwd=tmp_path,
        stdout=subprocess.DEVNULL,
    )
    url = f"redis://127.0.0.1:{port}/0"
    client = redis.Redis.from_url(url)
    for _ in range(100):
        try:
            client.ping()
            break
        except redis.exceptions.ConnectionError:
            time.sleep(0.05)
    yield url, proc
    proc.kill()
    proc.wait()


def _keys(url: str) -> list[bytes]:
    import redis

    return redis.Redis.from_url(url).keys(b"bertcheck-example:*")


def _run(pytester, monkeypatch, *args, seed="0", plant=False):
    """One machine's run: a fresh local database, so anything replayed came from the server."""
    shutil.rmtree(pytester.path / ".hypothesis", ignore_errors=True)
    log = pytester.path / "drawn.jsonl"
    log.unlink(missing_ok=True)
    monkeypatch.setenv("DRAWN_LOG", str(log))
    monkeypatch.setenv("BERTCHECK_SEED", seed)
    monkeypatch.setenv("PLANT", "1" if plant else "0")
    paths = [] if any(str(a).endswith(".py") for a in args) else ["test_p.py"]
    result = pytester.runpytest_subprocess(*paths, "-p", "no:cacheprovider", "--bert-model", "random:tiny", *args)
    drawn = [json.loads(line) for line in log.read_text().splitlines()] if log.exists() else []
    return result, drawn


@pytest.fixture
def project(pytester, monkeypatch):
    monkeypatch.delenv("BERTCHECK_PROFILE", raising=False)
    monkeypatch.delenv("BERTCHECK_DB", raising=False)
    pytester.makeconftest(PLANTED)
    pytester.makepyfile(test_p=DRAWING_PROPERTY)
    return pytester


def test_under_the_fleet_profile_each_part_and_run_seed_draws_its_own_inputs_reproducibly(project, monkeypatch):
    fleet = ("--hypothesis-profile", "fleet")
    runs = {
        key: _run(project, monkeypatch, *fleet, "--bert-split", part, seed=seed)[1]
        for key, (part, seed) in {"a": ("1/1", "1"), "again": ("1/1", "1"), "seed 2": ("1/1", "2")}.items()
    }
    assert len(runs["a"]) >= 7
    assert runs["a"] == runs["again"]  # a part reruns exactly, anywhere
    assert runs["a"] != runs["seed 2"]
    ci = [_run(project, monkeypatch, "--hypothesis-profile", "ci", seed=s)[1] for s in ("1", "2")]
    assert ci[0] == ci[1]  # derandomized profiles ignore BERTCHECK_SEED: every machine draws the same


def test_a_counterexample_one_machine_found_is_the_first_example_another_machine_runs(
    project, monkeypatch, redis_server
):
    url, _ = redis_server
    args = ("--hypothesis-profile", "fleet", "--bert-db", url)
    a, drawn_a = _run(project, monkeypatch, *args, "--bert-split", "1/1", seed="1", plant=True)
    a.assert_outcomes(failed=1)
    a.stdout.fnmatch_lines(
        [
            "*Property 'per-layer equivalence with hidden_states' failed at layer 0*",
            "*python -m bertcheck check hidden-states*",
        ]
    )
    assert _keys(url), "the failing run saved nothing to the shared database"
    shrunk = drawn_a[-1]  # Hypothesis reruns the shrunk counterexample last, to report it
    b, drawn_b = _run(project, monkeypatch, *args, seed="2", plant=True)  # another machine, another seed
    b.assert_outcomes(failed=1)
    assert drawn_b[0] == shrunk
    # Without the database, that seed starts elsewhere: the replay came from the server.
    _, fresh = _run(project, monkeypatch, "--hypothesis-profile", "fleet", seed="2", plant=True)
    assert fresh[0] != shrunk


def test_a_read_only_run_writes_nothing_to_the_server_and_still_keeps_its_own(project, monkeypatch, redis_server):
    url, _ = redis_server
    result, _ = _run(project, monkeypatch, "--bert-db", url, "--bert-db-readonly", plant=True)
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines([f"*, database {url} (read-only)*"])
    assert _keys(url) == []
    assert any((project.path / ".hypothesis" / "examples").rglob("*")), "the local database got nothing"
    result, _ = _run(project, monkeypatch, "--bert-db", url, plant=True)  # the same run, writable
    result.assert_outcomes(failed=1)
    assert _keys(url)


KILLS_THE_SERVER = """
import os, signal
from hypothesis import given, settings
from bertcheck.inputs.strategies import cases

@settings(max_examples=1)
@given(case=cases(long=False))
def test_a_first_item_during_which_the_server_dies(bert, case):
    os.kill(int(os.environ["REDIS_PID"]), signal.SIGKILL)
"""


def test_a_server_lost_mid_run_leaves_the_local_database_and_one_warning(project, monkeypatch, redis_server):
    url, proc = redis_server
    project.makepyfile(test_a=KILLS_THE_SERVER)
    monkeypatch.setenv("REDIS_PID", str(proc.pid))
    start = time.perf_counter()
    result, _ = _run(project, monkeypatch, "--bert-db", url, "test_a.py", "test_p.py", plant=True)
    took = time.perf_counter() - start
    result.assert_outcomes(passed=1, failed=1)  # the planted bug's failure, nothing of the server's
    result.stdout.fnmatch_lines(["*Property 'per-layer equivalence with hidden_states' failed at layer 0*"])
    out = result.stdout.str()
    assert out.count("is unreachable") == 1, out
    assert "this run goes on with the local database only" in out
    assert any((project.path / ".hypothesis" / "examples").rglob("*")), "the counterexample was not kept locally"
    assert took < 120  # no hang on a dead server: each call times out in seconds, then no more calls


class _NotRedis:
    """A TCP server on localhost that answers every connection as a web server would."""

    def __init__(self):
        import threading

        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.port = self.sock.getsockname()[1]
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self):
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            with conn:
                conn.settimeout(1)
                try:
                    conn.recv(4096)
                    conn.sendall(b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n")
                except OSError:
                    pass


def _refusing(kind: str, redis_server) -> str:
    """A database URL whose every call gets an answer that is not a success, of the `kind` asked."""
    import redis

    url, _ = redis_server
    if kind == "a DB index out of range":
        return url.rsplit("/", 1)[0] + "/99"  # redis-server has 16
    if kind == "a read-only replica":
        redis.Redis.from_url(url).replicaof("127.0.0.1", _free_port())  # a master that is never there
        return url
    return f"redis://127.0.0.1:{_NotRedis().port}/0"


@pytest.mark.parametrize("kind", ["a DB index out of range", "a read-only replica", "not Redis on that port"])
def test_a_server_that_answers_with_errors_is_a_lost_server_not_a_red_run(project, monkeypatch, redis_server, kind):
    url = _refusing(kind, redis_server)
    result, _ = _run(project, monkeypatch, "--bert-db", url, plant=True)
    result.assert_outcomes(failed=1)  # the planted bug's failure, nothing of the server's
    result.stdout.fnmatch_lines(["*Property 'per-layer equivalence with hidden_states' failed at layer 0*"])
    out = result.stdout.str()
    assert out.count("is unreachable or refused a call") == 1, out
    assert any((project.path / ".hypothesis" / "examples").rglob("*")), "the counterexample was not kept locally"
    passing, _ = _run(project, monkeypatch, "--bert-db", url)  # and without the bug: green, one warning
    passing.assert_outcomes(passed=1)


def test_the_database_url_password_is_never_printed(project, monkeypatch):
    port = _free_port()  # nothing listens: every call is refused
    url = f"redis://:s3cret@127.0.0.1:{port}/0"
    result, _ = _run(project, monkeypatch, "--bert-db", url)
    result.assert_outcomes(passed=1)
    out = result.stdout.str() + result.stderr.str()
    assert "s3cret" not in out
    assert f"redis://:***@127.0.0.1:{port}/0" in out
    assert out.count("is unreachable") == 1, out


def test_a_database_url_that_is_not_redis_stops_the_run_with_one_line(project, monkeypatch):
    result, _ = _run(project, monkeypatch, "--bert-db", "postgres://u:pw@host/db")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*--bert-db 'postgres://u:***@host/db': not a redis://*"])
    assert "pw" not in result.stderr.str()


# ---- the README's workflow, run as written ------------------------------------------------------------


def _workflow() -> dict:
    """The GitHub Actions YAML of the README's "Many machines" section."""
    import pathlib

    import yaml

    text = (pathlib.Path(__file__).parents[2] / "README.md").read_text(encoding="utf-8")
    blocks = [b.split("```", 1)[0] for b in text.split("```yaml\n")[1:]]
    (block,) = [b for b in blocks if "bertcheck worst" in b]
    return yaml.safe_load(block)


def _expand(text: str, values: dict[str, str]) -> str:
    """`${{ expr }}` replaced by values[expr]; an expression this test does not know fails it."""
    import re

    def one(match):
        expr = match[1].strip()
        assert expr in values, f"the README's workflow uses ${{{{ {expr} }}}}, which this test does not provide"
        return values[expr]

    return re.sub(r"\$\{\{(.*?)\}\}", one, text)


def test_the_readmes_workflow_splits_the_run_into_disjoint_parts_and_merges_their_tables(
    tmp_path, monkeypatch, redis_server
):
    url, _ = redis_server
    jobs = _workflow()["jobs"]
    values = {
        "github.run_number": "7",
        "secrets.BERTCHECK_DB": url,
        "github.event_name == 'pull_request' && '1' || ''": "",  # a push: the parts write the database
    }
    env = {key: _expand(str(value), values) for key, value in jobs["shards"]["env"].items()}
    (pytest_step,) = [s["run"] for s in jobs["shards"]["steps"] if "pytest" in s.get("run", "")]
    (worst_step,) = [s["run"] for s in jobs["worst"]["steps"] if "bertcheck worst" in s.get("run", "")]
    parts = jobs["shards"]["strategy"]["matrix"]["part"]
    root = __import__("pathlib").Path(__file__).parents[2]
    for name in ("properties", "conftest.py", "pyproject.toml"):  # the checkout, but the outputs land here
        (tmp_path / name).symlink_to(root / name)
    # The workflow's commands, verbatim; the model and the selection through pytest's and bertcheck's
    # own environment variables, so that four parts of a real split run here in a minute or so.
    monkeypatch.setenv("BERTCHECK_MODEL", "random:tiny")
    monkeypatch.setenv("PYTEST_ADDOPTS", "-k test_residual_identity -rA -p no:cacheprovider")
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    ran = {}
    for part in parts:
        command = _expand(pytest_step, {**values, "matrix.part": str(part)})
        proc = subprocess.run(["bash", "-c", command], cwd=tmp_path, capture_output=True, text=True)
        assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-2000:]
        assert f"part {part}/{len(parts)}, profile fleet, seed 7, database {url}" in proc.stdout
        ran[part] = {line.split()[1] for line in proc.stdout.splitlines() if line.startswith("PASSED ")}
    monkeypatch.setenv("PYTEST_ADDOPTS", "-k test_residual_identity -p no:cacheprovider")
    whole = subprocess.run(
        ["bash", "-c", "pytest properties --collect-only -q"], cwd=tmp_path, capture_output=True, text=True
    )
    everything = {line for line in whole.stdout.splitlines() if "::" in line}
    assert len(everything) >= 36  # fleet: 250 examples in 36 items of 7
    assert set().union(*ran.values()) == everything
    assert sum(len(r) for r in ran.values()) == len(everything)  # no item in two parts
    assert min(len(r) for r in ran.values()) >= len(everything) // len(parts) - 1  # even: all cost the same here
    proc = subprocess.run(["bash", "-c", worst_step], cwd=tmp_path, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    assert "over 4 runs (parts 1/4, 2/4, 3/4, 4/4)" in proc.stdout
    assert [line.split()[0] for line in proc.stdout.splitlines()[2:]] == ["residual-identity"]
    assert json.loads((tmp_path / "worst.json").read_text())["models"] == ["random:tiny"]
