"""The package's layers (README, "Layout"): each module imports only its own layer and those below it,
counting imports inside functions, and no two modules import each other, directly or round a circle."""

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "bertcheck"
# Bottom to top. The plugin is one module: it wires `run` and what is below it into pytest; a tool may
# use it (the benchmark's statistics plugin reads its stash keys), nothing below may.
LAYERS = ["spec", "inputs", "subjects", "properties", "run", "plugin", "tools"]


def _module(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imports(path: Path) -> set[str]:
    """The bertcheck modules `path` imports, wherever in it the import stands."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names if alias.name.startswith("bertcheck.")}
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and (node.module or "").startswith("bertcheck"):
            if node.module == "bertcheck" or node.module in LAYER_PACKAGES:
                found |= {f"{node.module}.{alias.name}" for alias in node.names}
            else:
                found.add(node.module)
    return found


LAYER_PACKAGES = {f"bertcheck.{layer}" for layer in LAYERS}
MODULES = {_module(p): p for p in PACKAGE.rglob("*.py")}


def _layer(module: str) -> str | None:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 and parts[1] in LAYERS else None


def test_every_module_of_the_package_stands_in_a_layer():
    loose = {m for m in MODULES if _layer(m) is None and m not in ("bertcheck", "bertcheck.__main__")}
    assert loose == set(), "modules outside every layer"


def test_no_module_imports_a_layer_above_its_own():
    upward = [
        f"{module} ({_layer(module)}) imports {target} ({_layer(target)})"
        for module, path in MODULES.items()
        if _layer(module) is not None
        for target in _imports(path)
        if _layer(target) is not None and LAYERS.index(_layer(target)) > LAYERS.index(_layer(module))
    ]
    assert upward == []


def test_no_modules_import_each_other_round_a_circle():
    graph = {m: {t for t in _imports(p) if t in MODULES and t != m} for m, p in MODULES.items()}
    circles = []

    def visit(module, path):
        for target in graph[module]:
            if target in path:
                circles.append(" -> ".join([*path[path.index(target) :], target]))
            elif target not in done:
                visit(target, [*path, target])
        done.add(module)

    done: set[str] = set()
    for module in sorted(graph):
        if module not in done:
            visit(module, [module])
    assert circles == []


def test_the_check_itself_sees_a_lazy_upward_import(tmp_path):
    # The rule must be able to fail: an import inside a function counts as one at the top.
    planted = tmp_path / "bertcheck" / "spec" / "planted.py"
    planted.parent.mkdir(parents=True)
    planted.write_text(
        "def f():\n    from bertcheck.tools.cli import main\n    from bertcheck.properties import registry\n"
    )
    assert _imports(planted) == {"bertcheck.tools.cli", "bertcheck.properties.registry"}


def test_an_old_flat_module_name_resolves_to_its_new_place_with_a_warning():
    import importlib
    import sys

    import pytest

    sys.modules.pop("bertcheck.verify", None)
    with pytest.warns(DeprecationWarning, match="bertcheck.verify is bertcheck.tools.verify now"):
        old = importlib.import_module("bertcheck.verify")
    assert old is importlib.import_module("bertcheck.tools.verify")
    with pytest.raises(ModuleNotFoundError):
        importlib.import_module("bertcheck.no_such_module")
