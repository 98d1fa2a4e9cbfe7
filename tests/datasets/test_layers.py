"""The import graph of the three packages: no cycle in any, and each layer imports only down.

Every import counts, including those inside functions (the cycle this test guards against,
``minari_io`` <-> ``recipes``, hid in one) and ``importlib.import_module("...")`` with a literal
name. The graph is read from the source with ``ast``, so no module is executed.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("lnmdn_envs", "lnmdn_datasets", "lnmdn_agents")
LAYERS = {"lnmdn_envs": 0, "lnmdn_datasets": 1, "lnmdn_agents": 2}  # may import lower or equal


def _modules() -> dict[str, Path]:
    modules = {}
    for package in PACKAGES:
        for path in (ROOT / package).rglob("*.py"):
            parts = list(path.relative_to(ROOT).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts.pop()
            modules[".".join(parts)] = path
    return modules


MODULES = _modules()


def _resolve(name: str) -> str | None:
    """The project module an import name refers to (``pkg.mod.attr`` -> ``pkg.mod``)."""
    while name and name not in MODULES:
        name = name.rpartition(".")[0]
    return name or None


def imports_of(module: str) -> set[str]:
    """Project modules ``module`` imports anywhere in its source."""
    tree = ast.parse(MODULES[module].read_text(), filename=str(MODULES[module]))
    package = module if MODULES[module].name == "__init__.py" else module.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(tree):
        names: list[str] = []
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.rsplit(".", node.level - 1)[0] if node.level > 1 else package
                base = f"{anchor}.{base}" if base else anchor
            names = [base, *(f"{base}.{alias.name}" for alias in node.names)]
        elif (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Attribute)
            and node.func.attr == "import_module"
            and node.args
            and isinstance(node.args[0], ast.Constant)
            and isinstance(node.args[0].value, str)
        ):
            names = [node.args[0].value]
        for name in names:
            target = _resolve(name)
            if target is not None and target != module:
                found.add(target)
    return found


def _cycles(modules: list[str]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan), among ``modules``."""
    graph = {m: sorted(imports_of(m) & set(modules)) for m in modules}
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    out: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in graph[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                out.append(sorted(component))

    for m in modules:
        if m not in index:
            visit(m)
    return out


def _in(package: str) -> list[str]:
    return sorted(m for m in MODULES if m.split(".")[0] == package)


def test_the_reader_sees_function_level_imports_and_the_cycle_they_make(tmp_path, monkeypatch):
    """The detector itself: the old layout's cycle, rebuilt from two snippets, is found."""
    old_io = tmp_path / "minari_io.py"
    old_io.write_text("def ensure_local(i):\n    from lnmdn_datasets.recipes import build\n")
    old_recipes = tmp_path / "recipes.py"
    old_recipes.write_text("from lnmdn_datasets.minari_io import EpisodeRecord, write_dataset\n")
    monkeypatch.setitem(MODULES, "lnmdn_datasets.minari_io", old_io)
    monkeypatch.setitem(MODULES, "lnmdn_datasets.recipes", old_recipes)
    expected = [["lnmdn_datasets.minari_io", "lnmdn_datasets.recipes"]]
    assert _cycles(_in("lnmdn_datasets")) == expected


@pytest.mark.parametrize("package", PACKAGES)
def test_no_import_cycle(package):
    """lnmdn_agents had two, both through function-level imports of a package's ``__init__``:
    ``recipes -> training -> training.cli -> recipes`` and
    ``policy_cli -> bench -> bench.report -> policy_cli``."""
    assert _cycles(_in(package)) == []


def test_the_reader_sees_a_cycle_through_a_package_init(tmp_path, monkeypatch):
    """The detector on the agents' old shape: a module importing a package whose ``__init__``
    imports a module that imports the first one back (inside a function)."""
    files = {
        "lnmdn_agents.recipes": "def f():\n    from lnmdn_agents.training import TrainConfig\n",
        "lnmdn_agents.training": "from lnmdn_agents.training.cli import train_command\n",
        "lnmdn_agents.training.cli": "def g():\n    from lnmdn_agents.recipes import load_recipe\n",
    }
    for module, text in files.items():
        path = tmp_path / f"{module}.py"
        path.write_text(text)
        monkeypatch.setitem(MODULES, module, path)
    assert _cycles(sorted(files)) == [sorted(files)]


def test_packages_import_only_downwards():
    upward = [
        (m, t)
        for m in MODULES
        for t in imports_of(m)
        if LAYERS[t.split(".")[0]] > LAYERS[m.split(".")[0]]
    ]
    assert upward == []


def test_datasets_layers():
    """Provisioning is the top of the data layer; the Minari I/O and the episode type are below
    everything that makes or fetches data."""
    below = {
        "lnmdn_datasets.episodes": set(),
        "lnmdn_datasets.minari_io": {"lnmdn_datasets.episodes", "lnmdn_datasets._requirements"},
    }
    for module, allowed in below.items():
        assert {t for t in imports_of(module) if t.startswith("lnmdn_datasets")} == allowed
    for module in _in("lnmdn_datasets"):
        if module not in ("lnmdn_datasets.provision", "lnmdn_datasets.cli"):
            assert "lnmdn_datasets.provision" not in imports_of(module), module


@pytest.mark.parametrize("module", [m for m in _in("lnmdn_datasets") if m != "lnmdn_datasets.cli"])
def test_each_module_imports_first_in_a_fresh_interpreter(module):
    """Imported first, a module that completes only through a cycle would fail here."""
    proc = subprocess.run(
        [sys.executable, "-c", f"import {module}"], capture_output=True, text=True, timeout=120
    )
    assert proc.returncode == 0, proc.stderr
