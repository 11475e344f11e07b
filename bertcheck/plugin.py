"""The pytest plugin: ``--bert-model``, ``--bert-impl``, ``--bert-model-impl``, the ``bert``,
``bert_layer_impl`` and ``bert_model_impl`` fixtures, the Hypothesis profiles of bertcheck's items
(`bertcheck.inputs.profiles`: ``ci`` unless BERTCHECK_PROFILE or ``--hypothesis-profile`` says otherwise), one
torch thread per xdist worker, the worst-error table at the end of a run (``--bert-worst-json``), and
what a run among many machines needs: its part of a split (``--bert-split``, `bertcheck.run.split`) and the
shared example database (``--bert-db``, `bertcheck.run.database`).

Registered through the ``pytest11`` entry point, so installing bertcheck brings it to any project; but
a project that does not ask for bertcheck (no ``--bert-*`` option or BERTCHECK_* variable, bertcheck's
properties not collected) runs exactly as it would without it: no header, no profile, no worker sizing,
no scheduler. Asked with an option that names what to check, the plugin collects the properties that
ship inside the package (`bertcheck.suite`, the checkout's ``properties/``) itself, so
``pytest --bert-impl mypkg:make_layer`` in any project runs them.
Everything heavy (torch, transformers) is imported only once a test asks for a model.
"""

from __future__ import annotations

import os
import sys

import pytest

from bertcheck.inputs.profiles import choose, for_test, own_settings, register_profiles
from bertcheck.run.asking import add_properties, asks_for_bertcheck, shipped_properties, unchecked
from bertcheck.run.seeds import Run
from bertcheck.run.split import Timings
from bertcheck.subjects.models import ModelError, family_models, parse_model_names, resolve

__all__ = ["shipped_properties"]  # where the shipped properties are, for users' tools (`bertcheck.run.asking`)

# Registered when pytest loads the plugin, before any option is read: `--hypothesis-profile thorough`
# finds its profile in any project that installs bertcheck. Registered, never loaded (`bertcheck.inputs.profiles`).
register_profiles()

_SOURCES = pytest.StashKey[list]()
_NOTES = pytest.StashKey[dict]()  # model name -> what the audit of the loaded checkpoint said, for the run header
WORST_KEY = pytest.StashKey[dict]()  # (property, model) -> worst share of tolerance, over all workers
COVERAGE_KEY = pytest.StashKey[dict]()  # the input classes drawn (`bertcheck.inputs.coverage.state`), over all workers
_BUDGET = pytest.StashKey[object]()  # bertcheck.subjects.memory.OverBudget of this process
_SCHEDULE = pytest.StashKey[bool]()  # -n without --dist: bertcheck schedules (bertcheck.run.scheduling)
_AUTO = pytest.StashKey[str]()  # why -n auto started the workers it did
_IMPLS = {"bert_impl": pytest.StashKey[str](), "bert_model_impl": pytest.StashKey[str]()}
_RUN = pytest.StashKey[object]()  # this run's `Run`: split part, seed, example database
_TIMINGS = Timings()  # the items reported in this process, for --bert-store-durations (reset per run)
_CANDIDATES: dict[tuple[str, str], object] = {}  # (kind, path) -> candidate: its builds are cached per process
_USED: set[str] = set()  # the bertcheck fixtures some item of this run used (`bertcheck.run.asking.unchecked`)
_FAILED: set[tuple[str, str]] = set()  # worst-error rows a failed item reported (`pytest_runtest_call`)
_NOTHING_CHECKED = pytest.StashKey[list]()  # what the options named and no test checked, when that made the run red
_ASKED = pytest.StashKey[bool]()  # this run asked for bertcheck (`bertcheck.run.asking.asks_for_bertcheck`)
_FIXTURES = ("bert", "bert_layer_impl", "bert_model_impl")  # an item with one of these is bertcheck's


def _bertchecks(item) -> list[str]:
    """The bertcheck fixtures `item` takes: none for a test that is not bertcheck's."""
    return [name for name in _FIXTURES if name in getattr(item, "fixturenames", ())]


def pytest_addoption(parser):
    group = parser.getgroup("bertcheck", "bertcheck: verify a BERT against the architecture")
    group.addoption(
        "--bert-model",
        action="append",
        metavar="MODEL",
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
    _add_run_options(group)


def _add_run_options(group) -> None:
    """Options for a run spread over machines (`bertcheck.run.split`, `bertcheck.run.database`)."""
    group.addoption(
        "--bert-split",
        metavar="K/N",
        help="Run part K of N (BERTCHECK_SPLIT): every machine of an N-way split runs the same command "
        "with its own K; parts are balanced by measured durations.",
    )
    group.addoption(
        "--bert-durations",
        metavar="FILE",
        help="Durations that balance --bert-split (default: the file shipped with bertcheck).",
    )
    group.addoption(
        "--bert-store-durations",
        metavar="FILE",
        help="Write this run's durations, per example of each property and model, for --bert-durations.",
    )
    group.addoption(
        "--bert-db",
        metavar="URL",
        help="A Redis or Valkey server shared by every machine, as example database over the local one "
        "(BERTCHECK_DB; redis://[:password@]host:6379/0): counterexamples found anywhere replay first.",
    )
    group.addoption(
        "--bert-db-readonly",
        action="store_true",
        default=None,
        help="Read the --bert-db server, never write it (BERTCHECK_DB_READONLY=1): for pull-request runs.",
    )
    group.addoption(
        "--bert-worst-json",
        metavar="FILE",
        help="Also write the worst-error table as JSON (`bertcheck worst FILE...` merges several runs').",
    )


def pytest_configure(config):
    _USED.clear()  # pytester runs several sessions in one process
    _FAILED.clear()
    _TIMINGS.clear()
    config.stash[_ASKED] = asked = asks_for_bertcheck(config)
    if asked:
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        add_properties(config)
    try:
        # --hypothesis-profile (Hypothesis's plugin loads it for the whole run: the user's choice), else
        # BERTCHECK_PROFILE, else ci, for bertcheck's items alone.
        choose(config.getoption("hypothesis_profile", None))
    except ValueError as err:
        raise pytest.UsageError(str(err)) from None
    try:
        config.stash[_RUN] = Run.from_config(config)
    except ValueError as err:  # SplitError, DatabaseError: one line
        raise pytest.UsageError(str(err)) from None
    config.addinivalue_line(
        "markers",
        "shares_forward(group='one-forward'): a property whose shards draw the same inputs as the other "
        "properties of its group and share work per input on one worker: 'one-forward', the read-only "
        "properties' hooked forward (bertcheck.properties.one_forward); 'plain-call', the input forms' plain call",
    )
    if asked:
        _sources(config)  # a bad model name stops the run here, before collection, with one message
        if not hasattr(config, "workerinput"):
            _audit_checkpoints(config)
    for option, default in (
        ("bert_impl", "bertcheck.subjects.candidate:reference_layer"),
        ("bert_model_impl", "bertcheck.subjects.candidate:reference_model"),
    ):
        path = config.getoption(option) or default
        if config.getoption(option):  # the user's own module: import it now, so a bad path stops the run here
            from bertcheck.subjects.candidate import FactoryError, load_factory

            try:
                load_factory(path)
            except FactoryError as err:
                raise pytest.UsageError(f"--{option.replace('_', '-')}: {err}") from None
        config.stash[_IMPLS[option]] = path
    if asked:
        from bertcheck.subjects import memory

        try:
            config.stash[_BUDGET] = memory.OverBudget(memory.budget_gib())
        except ValueError as err:
            raise pytest.UsageError(str(err)) from None
        _one_thread_per_worker()


def _sources(config) -> list:
    """The models to check (`bertcheck.subjects.models.ModelSource`), resolved once: files and JSON only."""
    if _SOURCES not in config.stash:
        given = config.getoption("bert_model") or [os.environ.get("BERTCHECK_MODEL", "")]
        model_names = [model_name for value in given for model_name in parse_model_names(value)]
        try:
            model_names += family_models(os.environ.get("BERTCHECK_FAMILY"))  # README, "The BERT family"
            config.stash[_SOURCES] = [resolve(model_name) for model_name in dict.fromkeys(model_names)]
        except ModelError as err:
            raise pytest.UsageError(str(err)) from None
    return config.stash[_SOURCES]


def _one_thread_per_worker() -> None:
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
    from bertcheck.subjects.subject import Bert

    notes = config.stash.setdefault(_NOTES, {})
    distributed = getattr(config.option, "dist", "no") != "no"
    for source in _sources(config):
        notes[source.model_name] = list(source.notes)
        if source.embedded:
            continue
        try:
            bert = Bert.load(source) if distributed else loaded(source, config)
        except ModelError as err:
            raise pytest.UsageError(str(err)) from None
        notes[source.model_name] = bert.notes


@pytest.hookimpl(optionalhook=True, tryfirst=True)  # before xdist's own, whichever plugin loaded first
def pytest_xdist_auto_num_workers(config):
    """`-n auto`: a worker per core, but only as many as fit in the memory available, at the worker
    budget each (16 cores and 32 GiB start 16 workers of bert-base only if they fit). Not asked for
    bertcheck: xdist's own count."""
    asked = config.stash[_ASKED] if _ASKED in config.stash else asks_for_bertcheck(config)
    if not asked:
        return None  # xdist's own -n auto
    from bertcheck.subjects.memory import auto_workers

    n, why = auto_workers()
    config.stash[_AUTO] = f"bertcheck: -n auto: {n} workers ({why})"
    return n


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_protocol(item, nextitem):
    """Run the item under the device guard (`bertcheck.inputs.devices`) and its shrinking time budget; note its
    largest input; after it, warn if it took this process past its memory budget."""
    if not _bertchecks(item):
        yield  # not bertcheck's: left alone
        return
    from bertcheck.subjects import memory
    from bertcheck.inputs.devices import guard
    from bertcheck.properties.failures import SHRINKING
    from bertcheck.run.scheduling import unit_of
    from bertcheck.properties.worst import FAILED_ROWS

    memory.forget_inputs()
    FAILED_ROWS.clear()
    SHRINKING.arm()  # the item's shrinking is held to its time budget (`bertcheck.properties.failures.ShrinkClock`)
    try:
        with guard():
            yield
    finally:
        SHRINKING.disarm()
    subject = sys.modules.get("bertcheck.subjects.subject")  # None where no test asked for a model: nothing to release
    if subject is not None:
        for bert in subject.every_loaded():
            bert.release_copies()
    forms = sys.modules.get("bertcheck.properties.input_forms")
    if forms is not None and (nextitem is None or unit_of(nextitem.nodeid) != unit_of(item.nodeid)):
        forms.forget_plain()  # the forms' shared plain calls serve one unit's inputs, never the next's
    memory.trim()
    said = item.config.stash[_BUDGET].after(item.nodeid) if _BUDGET in item.config.stash else None
    if said:
        item.warn(pytest.PytestWarning(said))


@pytest.hookimpl(tryfirst=True)
def pytest_pyfunc_call(pyfuncitem):
    """A property's item runs its shard's examples drawn at random, then one per row of its covering
    design (`bertcheck.inputs.coverage.run_item`): every input class its strategy can draw is drawn by
    construction."""
    test = pyfuncitem.obj
    if "bert" not in pyfuncitem.fixturenames or not hasattr(test, "_hypothesis_internal_use_settings"):
        return None
    from bertcheck.inputs import coverage
    from bertcheck.inputs.profiles import current_profile
    from bertcheck.inputs.shards import Shard

    shard = pyfuncitem.funcargs.get("bertcheck_shard") or Shard(0, 1)
    args = {name: pyfuncitem.funcargs[name] for name in pyfuncitem._fixtureinfo.argnames}
    coverage.run_item(test, args, shard.index, shard.count, current_profile())
    return True


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_call(item):
    """On a failed item's report: the worst-error rows it failed in (the controller marks them FAIL even
    when a worker stops early, -x, and never hands over its table), and the input its failure shrank to
    (`bertcheck_shrunk`, the last failing example: Hypothesis replays the smallest last)."""
    outcome = yield
    from bertcheck.properties.failures import SHRINKING
    from bertcheck.properties.worst import FAILED_ROWS

    if not _bertchecks(item):
        return
    if FAILED_ROWS:
        item.user_properties.append(("bertcheck_failed", sorted([c, m] for c, m in FAILED_ROWS)))
    if outcome.excinfo is not None and SHRINKING.smallest is not None:
        item.user_properties.append(("bertcheck_shrunk", SHRINKING.smallest.example()))


def pytest_report_header(config):
    """What is checked: each model, and anything its audit said (a float16 checkpoint, one token type)."""
    if not config.stash.get(_ASKED, False):
        return []
    sources = config.stash.get(_SOURCES, [])
    notes = config.stash.get(_NOTES, {})
    lines = [f"bertcheck: {', '.join(s.model_name for s in sources)} (not checked: any task head)"]
    if _AUTO in config.stash:
        lines.append(config.stash[_AUTO])
    run = config.stash[_RUN].about()
    if run.get("part") or run.get("database"):
        lines.append("bertcheck: " + ", ".join(f"{k} {v}" for k, v in run.items() if v is not None))
    for source in sources:
        lines += [f"bertcheck: {source.model_name}: {note}" for note in notes.get(source.model_name, source.notes)]
    return lines


def pytest_generate_tests(metafunc):
    if "bert_baseline" in metafunc.fixturenames:
        files = metafunc.config.getoption("bert_baseline") or []
        metafunc.parametrize("bert_baseline", files, ids=[os.path.basename(f) for f in files], scope="session")
    if "bert" in metafunc.fixturenames:
        sources = _sources(metafunc.config)
        metafunc.parametrize("bert", sources, ids=[s.model_name for s in sources], indirect=True, scope="session")
        own = own_settings(metafunc.function)
        if own is not None:  # a Hypothesis property: its examples split into items (bertcheck.inputs.shards)
            from bertcheck.inputs.shards import shards_for

            shards = shards_for(for_test(own).max_examples)
            from bertcheck.run.scheduling import sharing_group

            try:
                group = sharing_group(metafunc.definition)
            except ValueError as err:
                pytest.fail(str(err), pytrace=False)
            if len(shards) > 1:
                ids = [s.id + (f"-{group}" if group else "") for s in shards]
                metafunc.parametrize("bertcheck_shard", shards, ids=ids, indirect=True)


@pytest.fixture(scope="session")
def bert(request):
    """The model under test (a `bertcheck.subjects.subject.Bert`), loaded once per worker."""
    _one_thread_per_worker()  # a project that asks for bertcheck by this fixture alone
    try:
        return loaded(request.param, request.config)
    except ModelError as err:
        # Every test on this model errors with the one line (pytest.exit inside an xdist worker is an
        # INTERNALERROR); a checkpoint the user named was already loaded once before collection.
        pytest.fail(str(err), pytrace=False)


@pytest.fixture(autouse=True)
def bertcheck_shard(request):
    """The shard of a property's examples this item runs (`bertcheck.inputs.shards`); None for other tests.

    On each property's item (a Hypothesis test that takes `bert`), as Hypothesis's own pytest plugin
    sets per-item settings on parametrized tests: the shard's share of the profile's examples, the
    item's seed (`bertcheck.run.seeds.Run.seed`) and the example database (`bertcheck.run.database`); and
    it marks the shard as running for the strategies."""
    from bertcheck.inputs.shards import running

    uses = _bertchecks(request.node)
    if uses:  # for `bertcheck.run.asking.unchecked`, from every worker
        request.node.user_properties.append(("bertcheck_uses", uses))
    shard = getattr(request, "param", None)
    test = getattr(request.node, "obj", None)
    if "bert" not in request.fixturenames or not hasattr(test, "_hypothesis_internal_use_settings"):
        yield shard
        return
    from hypothesis import Phase, settings

    # The run's bertcheck profile, with what the test's own @settings(...) says (`bertcheck.inputs.profiles`).
    base = for_test(own_settings(test))
    test._bertcheck_settings = base
    changes = {}
    if shard is not None:
        changes["max_examples"] = shard.examples(base.max_examples)
        if shard.index:  # explicit @example inputs run once, in the first shard
            changes["phases"] = tuple(p for p in base.phases if p is not Phase.explicit)
    run = request.config.stash[_RUN]
    if run.database is not None:
        changes.update(database=run.database, derandomize=False)  # the seed below keeps it reproducible
    test._hypothesis_internal_use_settings = settings(base, **changes)
    request.node.user_properties.append(("bertcheck_examples", changes.get("max_examples", base.max_examples)))
    # What @hypothesis.seed sets.
    test._hypothesis_internal_use_seed = run.seed(request.node, base)
    try:
        with running(shard):
            yield shard
    finally:
        test._hypothesis_internal_use_seed = None


@pytest.hookimpl(wrapper=True)
def pytest_cmdline_main(config):
    """With `-n` and no `--dist`, bertcheck's scheduling (`OneForwardScheduling`); an explicit `--dist`
    is kept as given. (A wrapper: xdist's own hook, which turns `-n` into `--dist load`, runs after this.)"""
    if (
        config.pluginmanager.hasplugin("xdist")
        and getattr(config.option, "numprocesses", None)
        and config.option.dist == "no"
        and asks_for_bertcheck(config)
    ):
        config.option.dist = "load"
        config.stash[_SCHEDULE] = True
    return (yield)


@pytest.hookimpl(tryfirst=True, optionalhook=True)
def pytest_xdist_make_scheduler(config, log):
    if config.stash.get(_SCHEDULE, False):
        from bertcheck.run.scheduling import OneForwardScheduling

        return OneForwardScheduling(config, log, models=[source.model_name for source in _sources(config)])
    return None


def pytest_collection_modifyitems(config, items):
    """Sharded items in dtype order within each model (`bertcheck.run.scheduling.dtype_order`). Without
    --bert-baseline there is no baseline to compare: those tests are deselected, not skipped. A part of a
    split keeps its own items (`bertcheck.run.split.part_of`)."""
    if config.stash.get(_ASKED, False):
        from bertcheck.run.scheduling import dtype_order

        items.sort(key=dtype_order)  # stable: the rest of the order is pytest's
    if not config.getoption("bert_baseline"):
        _deselect(config, items, lambda item: "bert_baseline" in getattr(item, "fixturenames", ()))
    part = config.stash[_RUN].part
    if part is not None:
        from bertcheck.run.split import SplitError, part_of

        try:
            mine = part_of(items, part, config.getoption("bert_durations"))
        except SplitError as err:
            raise pytest.UsageError(str(err)) from None
        _deselect(config, items, lambda item: item.nodeid not in mine)


def _deselect(config, items: list, drop) -> None:
    gone = [item for item in items if drop(item)]
    if gone:
        config.hook.pytest_deselected(items=gone)
        items[:] = [item for item in items if not drop(item)]


def pytest_runtest_logreport(report):
    """With --bert-store-durations: each item's time (setup + call + teardown) and examples, from every worker."""
    if report.when not in ("setup", "call", "teardown"):
        return
    said = dict(report.user_properties)
    _TIMINGS.add(report.nodeid, report.duration, report.skipped, said.get("bertcheck_examples"))
    for name, value in report.user_properties:
        if name == "bertcheck_uses":
            _USED.update(value)
        elif name == "bertcheck_failed":
            _FAILED.update((c, m) for c, m in value)


def loaded(model_name, config=None):
    """The `Bert` for `model_name` (a string or a resolved `ModelSource`), loaded once per process."""
    from bertcheck.subjects.subject import Bert

    os.environ.setdefault("HF_HUB_OFFLINE", "1")  # models come from packages, directories or the cache
    cache = getattr(config, "cache", None)
    bert = Bert.once(model_name, cache.mkdir("bertcheck-models") if cache is not None else None)
    bert.shares_observations = True  # no property changes the plugin's models: an observation can serve several
    return bert


def _candidate(config, option: str, kind: str):
    from bertcheck.subjects.candidate import candidate_at

    path = config.stash[_IMPLS[option]]
    if (kind, path) not in _CANDIDATES:
        _CANDIDATES[kind, path] = candidate_at(kind, path)
    return _CANDIDATES[kind, path]


@pytest.fixture(scope="session")
def bert_layer_impl(request):
    """The layer candidate under test (`bertcheck.subjects.candidate.LayerCandidate`), from --bert-impl."""
    return _candidate(request.config, "bert_impl", "layer")


@pytest.fixture(scope="session")
def bert_model_impl(request):
    """The model candidate under test (`bertcheck.subjects.candidate.ModelCandidate`), from --bert-model-impl."""
    return _candidate(request.config, "bert_model_impl", "model")


# ---- the worst error per property, gathered from every xdist worker ------------------------------


def pytest_sessionfinish(session):
    from bertcheck.run import gathering

    config = session.config
    if hasattr(config, "workeroutput"):  # an xdist worker: hand its numbers to the controller
        config.workeroutput.update(gathering.handed())
        return
    worst = config.stash.setdefault(WORST_KEY, {})
    gathering.add_own(worst, config.stash.setdefault(COVERAGE_KEY, {}), _FAILED)
    # What the options named and no test checked (a part of a split may hold none: not asked).
    asked = config.stash.get(_ASKED, False) and config.stash[_RUN].part is None
    missing = unchecked(config, _USED) if asked else []
    if missing and session.exitstatus in (pytest.ExitCode.OK, pytest.ExitCode.NO_TESTS_COLLECTED):
        session.exitstatus = pytest.ExitCode.TESTS_FAILED  # never green on what was not checked
        config.stash[_NOTHING_CHECKED] = missing
    if config.getoption("bert_store_durations"):
        workers = getattr(config.option, "numprocesses", None) or 0
        _TIMINGS.save(config.getoption("bert_store_durations"), workers, _model_names(config))
    if config.getoption("bert_worst_json"):
        from bertcheck.properties.worst import save

        save(config.getoption("bert_worst_json"), worst, _model_names(config), config.stash[_RUN].about())


def _model_names(config) -> list[str]:
    return [source.model_name for source in config.stash.get(_SOURCES, [])]


@pytest.hookimpl(optionalhook=True)
def pytest_testnodedown(node, error):
    from bertcheck.run import gathering

    stash, output = node.config.stash, getattr(node, "workeroutput", {})
    gathering.take(stash.setdefault(WORST_KEY, {}), stash.setdefault(COVERAGE_KEY, {}), output)


def pytest_terminal_summary(terminalreporter, config):
    from bertcheck.properties.registry import rows
    from bertcheck.properties.worst import table

    missing = config.stash.get(_NOTHING_CHECKED, [])
    if missing:
        terminalreporter.section("bertcheck: nothing checked", red=True)
        terminalreporter.write_line(
            f"bertcheck: {', '.join(missing)} given, but no test of this run checked it: the paths given hold "
            f"none of bertcheck's properties (run without paths, or add {shipped_properties()})",
            red=True,
        )
    for line in _declared(config):
        terminalreporter.write_line(line)
    lines = table(config.stash.get(WORST_KEY, {}), _model_names(config), rows())
    if lines:
        terminalreporter.section("bertcheck: worst error per property, as a share of its tolerance (1 = the limit)")
        for line in lines:
            terminalreporter.write_line(line)
    _coverage_summary(terminalreporter, config)


def _declared(config) -> list[str]:
    """What each candidate of this run declared it runs (`bertcheck.runs`), and so what was not drawn."""
    from bertcheck.inputs.capabilities import declared
    from bertcheck.inputs.strategies import never_drawn
    from bertcheck.subjects.candidate import CandidateError, load_factory

    lines = []
    for option, kind in (("bert_impl", "layer"), ("bert_model_impl", "model")):
        path = config.stash.get(_IMPLS[option], None)
        try:
            left = never_drawn(declared(load_factory(path)), kind) if path else []
        except CandidateError:
            continue  # its items already failed, saying why
        if left:
            lines.append(f"bertcheck: {path} declares what it runs (@bertcheck.runs), so not drawn: {'; '.join(left)}")
    return lines


def _coverage_summary(terminalreporter, config) -> None:
    """The input classes each property drew (`bertcheck.inputs.coverage`), and any it could draw and never did."""
    from bertcheck.inputs import coverage

    lines, never = coverage.summary(config.stash.get(COVERAGE_KEY, {}), _model_names(config))
    if not lines:
        return
    terminalreporter.section("bertcheck: input classes drawn per property (examples; NEVER: not drawn in this run)")
    for line in lines:
        terminalreporter.write_line(line)
    if never:
        terminalreporter.write_line(
            f"bertcheck: {len(never)} property and model pairs never drew some class their inputs can take "
            "(a -k selection, an item that failed or stopped early, or a gap in the covering design)",
            yellow=True,
        )
