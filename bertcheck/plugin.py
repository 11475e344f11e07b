"""The pytest plugin: ``--bert-model``, ``--bert-impl``, ``--bert-model-impl``, the ``bert``,
``bert_layer_impl`` and ``bert_model_impl`` fixtures, one torch thread per xdist worker.

Registered through the ``pytest11`` entry point, so installing bertcheck brings it to any project.
Everything heavy (torch, transformers) is imported only once a test asks for a model.
"""

from __future__ import annotations

import os

import pytest

from bertcheck.models import ModelSpecError, parse_specs, resolve

_SOURCES = pytest.StashKey[list]()
_NOTES = pytest.StashKey[dict]()  # spec -> what the audit of the loaded checkpoint said, for the run header
_WORST = pytest.StashKey[dict]()  # (property, model) -> worst share of tolerance, over all workers
_STATS = pytest.StashKey[dict]()  # examples per (property, model) and peak RSS per worker, for the benchmark
_IMPLS = {"bert_impl": pytest.StashKey[str](), "bert_model_impl": pytest.StashKey[str]()}
_CANDIDATES: dict[tuple[str, str], object] = {}  # (kind, path) -> candidate: its builds are cached per process


def pytest_addoption(parser):
    group = parser.getgroup("bertcheck", "bertcheck: verify a BERT against the architecture")
    group.addoption(
        "--bert-model",
        action="append",
        metavar="SPEC",
        help="Model to check (repeatable or comma-separated): random:bert-base-uncased, minilm, random:tiny, "
        "a checkpoint directory, or a hub id in the local cache. Default: $BERTCHECK_MODEL, else both embedded models.",
    )
    group.addoption(
        "--bert-baseline",
        action="append",
        metavar="FILE",
        help="A baseline from `bertcheck baseline record`: adds a property comparing the live model against it, "
        "layer by layer (repeatable).",
    )
    group.addoption(
        "--bert-impl",
        metavar="MODULE:ATTR",
        help="Layer factory to check against the spec: factory(hf_layer, config) -> fn(hidden_states, attention_mask). "
        "Default: bertcheck's own reference layer.",
    )
    group.addoption(
        "--bert-model-impl",
        metavar="MODULE:ATTR",
        help="Model factory to check: factory(hf_model) -> fn(input_ids, attention_mask, token_type_ids) returning "
        "the hidden states. Default: bertcheck's own reference model.",
    )


def pytest_configure(config):
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    given = config.getoption("bert_model") or [os.environ.get("BERTCHECK_MODEL", "")]
    specs = [spec for value in given for spec in parse_specs(value)]
    try:
        # Files and JSON only: a bad spec stops the run here, before collection, with one message.
        config.stash[_SOURCES] = [resolve(spec) for spec in dict.fromkeys(specs)]
    except ModelSpecError as err:
        raise pytest.UsageError(str(err)) from None
    if not hasattr(config, "workerinput"):
        _audit_checkpoints(config)
    for option, default in (("bert_impl", "bertcheck.candidate:reference_layer"), ("bert_model_impl", "bertcheck.candidate:reference_model")):
        path = config.getoption(option) or default
        if config.getoption(option):  # the user's own module: import it now, so a bad path stops the run here
            from bertcheck.candidate import FactoryError, load_factory

            try:
                load_factory(path)
            except FactoryError as err:
                raise pytest.UsageError(f"--{option.replace('_', '-')}: {err}") from None
        config.stash[_IMPLS[option]] = path
    if os.environ.get("PYTEST_XDIST_WORKER"):
        # xdist leaves thread counts alone: two workers x two torch threads on two cores ran 4-30x
        # slower than one thread each. Workers are the parallelism; each gets one thread.
        import torch

        torch.set_num_threads(1)


def _audit_checkpoints(config) -> None:
    """Load each checkpoint the user named once here, before any test or worker starts, so a model whose
    weights did not all load (or whose config the reference does not implement) stops the run with one
    line. The embedded models are ours and load in every worker anyway; under xdist this process runs
    no test, so its copy is dropped."""
    from bertcheck.subject import Bert

    notes = config.stash.setdefault(_NOTES, {})
    distributed = getattr(config.option, "dist", "no") != "no"
    for source in config.stash[_SOURCES]:
        notes[source.spec] = list(source.notes)
        if source.embedded:
            continue
        try:
            bert = Bert.load(source) if distributed else loaded(source, config)
        except ModelSpecError as err:
            raise pytest.UsageError(str(err)) from None
        notes[source.spec] = bert.notes


def pytest_report_header(config):
    """What is checked: each model, and anything its audit said (a float16 checkpoint, one token type)."""
    sources = config.stash.get(_SOURCES, [])
    notes = config.stash.get(_NOTES, {})
    lines = [f"bertcheck: {', '.join(s.spec for s in sources)} (not checked: the pooler and any task head)"]
    for source in sources:
        lines += [f"bertcheck: {source.spec}: {note}" for note in notes.get(source.spec, source.notes)]
    return lines


def pytest_generate_tests(metafunc):
    if "bert_baseline" in metafunc.fixturenames:
        files = metafunc.config.getoption("bert_baseline") or []
        metafunc.parametrize("bert_baseline", files, ids=[os.path.basename(f) for f in files], scope="session")
    if "bert" in metafunc.fixturenames:
        sources = metafunc.config.stash[_SOURCES]
        metafunc.parametrize("bert", sources, ids=[s.spec for s in sources], indirect=True, scope="session")
        settings = getattr(metafunc.function, "_hypothesis_internal_use_settings", None)
        if settings is not None:  # a Hypothesis property: its examples split into items (bertcheck.shards)
            from bertcheck.shards import shards_for

            shards = shards_for(settings.max_examples)
            if len(shards) > 1:
                metafunc.parametrize("bertcheck_shard", shards, ids=[s.id for s in shards], indirect=True)


@pytest.fixture(scope="session")
def bert(request):
    """The model under test (a `bertcheck.subject.Bert`), loaded once per worker."""
    try:
        return loaded(request.param, request.config)
    except ModelSpecError as err:
        # Every test on this model errors with the one line (pytest.exit inside an xdist worker is an
        # INTERNALERROR); a checkpoint the user named was already loaded once before collection.
        pytest.fail(str(err), pytrace=False)


@pytest.fixture(autouse=True)
def bertcheck_shard(request):
    """The shard of a property's examples this item runs (`bertcheck.shards`); None for other tests.

    Sets the item's share of the profile's examples on the test, as Hypothesis's own pytest plugin
    sets per-item settings on parametrized tests, and marks the shard as running for the strategies."""
    from bertcheck.shards import running

    shard = getattr(request, "param", None)
    if shard is None:
        yield None
        return
    from hypothesis import Phase, settings

    test = request.node.obj
    base = test.__dict__.setdefault("_bertcheck_settings", test._hypothesis_internal_use_settings)
    phases = base.phases if shard.index == 0 else tuple(p for p in base.phases if p is not Phase.explicit)
    test._hypothesis_internal_use_settings = settings(base, max_examples=shard.examples(base.max_examples), phases=phases)
    with running(shard):
        yield shard


def pytest_collection_modifyitems(config, items):
    """Without --bert-baseline there is no baseline to compare: those tests are deselected, not skipped."""
    if config.getoption("bert_baseline"):
        return
    keep, drop = [], []
    for item in items:
        (drop if "bert_baseline" in getattr(item, "fixturenames", ()) else keep).append(item)
    if drop:
        config.hook.pytest_deselected(items=drop)
        items[:] = keep


def loaded(spec, config=None):
    """The `Bert` for `spec` (a string or a resolved `ModelSource`), loaded once per process."""
    from bertcheck.subject import Bert

    cache = getattr(config, "cache", None)
    return Bert.once(spec, cache.mkdir("bertcheck-models") if cache is not None else None)


def _candidate(config, option: str, kind: str):
    from bertcheck.candidate import LayerCandidate, ModelCandidate, load_factory

    path = config.stash[_IMPLS[option]]
    if (kind, path) not in _CANDIDATES:
        _CANDIDATES[kind, path] = (LayerCandidate if kind == "layer" else ModelCandidate)(load_factory(path), path)
    return _CANDIDATES[kind, path]


@pytest.fixture(scope="session")
def bert_layer_impl(request):
    """The layer candidate under test (`bertcheck.candidate.LayerCandidate`), from --bert-impl."""
    return _candidate(request.config, "bert_impl", "layer")


@pytest.fixture(scope="session")
def bert_model_impl(request):
    """The model candidate under test (`bertcheck.candidate.ModelCandidate`), from --bert-model-impl."""
    return _candidate(request.config, "bert_model_impl", "model")


# ---- the worst error per property, gathered from every xdist worker ------------------------------


def _peak_rss_mib() -> float:
    import resource
    import sys

    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / 2**20 if sys.platform == "darwin" else peak / 2**10  # bytes on macOS, KiB on Linux


def pytest_sessionfinish(session):
    from bertcheck.worst import EXAMPLES, WORST, merge

    config = session.config
    if hasattr(config, "workeroutput"):  # an xdist worker: hand its numbers to the controller
        config.workeroutput["bertcheck_worst"] = [[c, m, v] for (c, m), v in WORST.items()]
        config.workeroutput["bertcheck_examples"] = [[c, m, n] for (c, m), n in EXAMPLES.items()]
        config.workeroutput["bertcheck_peak_rss_mib"] = _peak_rss_mib()
    else:
        merge(config.stash.setdefault(_WORST, {}), WORST)
        stats = config.stash.setdefault(_STATS, {"examples": {}, "peak_rss_mib": []})
        if not stats["peak_rss_mib"]:  # no xdist workers reported: this process ran the tests itself
            _add(stats, EXAMPLES, _peak_rss_mib())
    _write_stats(config)


def _add(stats: dict, examples: dict, rss: float) -> None:
    for key, n in examples.items():
        stats["examples"][key] = stats["examples"].get(key, 0) + n
    stats["peak_rss_mib"].append(rss)


def _write_stats(config) -> None:
    """With BERTCHECK_STATS=FILE, the controller writes examples per property and peak memory per worker
    there as JSON: what `bertcheck bench` reads from the suite run it times."""
    path = os.environ.get("BERTCHECK_STATS")
    if not path or hasattr(config, "workeroutput"):
        return
    import json

    stats = config.stash.get(_STATS, {"examples": {}, "peak_rss_mib": []})
    with open(path, "w") as f:
        json.dump({"examples": [[c, m, n] for (c, m), n in sorted(stats["examples"].items())],
                   "peak_rss_mib": stats["peak_rss_mib"], "worst": [[c, m, v] for (c, m), v in sorted(config.stash.get(_WORST, {}).items())]},
                  f, indent=1)  # fmt: skip


@pytest.hookimpl(optionalhook=True)
def pytest_testnodedown(node, error):
    from bertcheck.worst import merge

    output = getattr(node, "workeroutput", {})
    merge(node.config.stash.setdefault(_WORST, {}), {(c, m): v for c, m, v in output.get("bertcheck_worst", [])})
    if "bertcheck_peak_rss_mib" in output:
        _add(node.config.stash.setdefault(_STATS, {"examples": {}, "peak_rss_mib": []}),
             {(c, m): n for c, m, n in output.get("bertcheck_examples", [])}, output["bertcheck_peak_rss_mib"])  # fmt: skip


def pytest_terminal_summary(terminalreporter, config):
    from bertcheck.worst import table

    lines = table(config.stash.get(_WORST, {}), [source.spec for source in config.stash.get(_SOURCES, [])])
    if lines:
        terminalreporter.section("bertcheck: worst error per property, as a share of its tolerance (1 = the limit)")
        for line in lines:
            terminalreporter.write_line(line)
