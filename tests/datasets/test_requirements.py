"""The `datasets` extra: it installs what lnmdn_datasets imports, and its absence is named."""

from __future__ import annotations

import ast
import importlib.metadata
import re
import subprocess
import sys
from pathlib import Path

import pytest

tomllib = pytest.importorskip("tomllib")  # Python >= 3.11

ROOT = Path(__file__).resolve().parents[2]
PROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
EXTRAS = PROJECT["optional-dependencies"]


def _requirement_names(requirements: list[str]) -> set[str]:
    """Distribution names of requirement strings, normalised (PEP 503), self-references expanded."""
    names: set[str] = set()
    for requirement in requirements:
        name = re.split(r"[\[<>=!~; ]", requirement, maxsplit=1)[0]
        if name == "lnmdn":
            for extra in re.search(r"\[(.*)\]", requirement).group(1).split(","):
                names |= _requirement_names(EXTRAS[extra.strip()])
        else:
            names.add(re.sub(r"[-_.]+", "-", name).lower())
    return names


def _third_party_imports(package: str) -> set[str]:
    found: set[str] = set()
    for path in (ROOT / package).rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                found |= {alias.name.split(".")[0] for alias in node.names}
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                found.add(node.module.split(".")[0])
    return {n for n in found if n not in sys.stdlib_module_names and not n.startswith("lnmdn")}


def test_datasets_extra_covers_every_import_of_lnmdn_datasets():
    provided = _requirement_names(PROJECT["dependencies"]) | _requirement_names(EXTRAS["datasets"])
    distributions = importlib.metadata.packages_distributions()
    imports = _third_party_imports("lnmdn_datasets")
    assert {"minari", "tqdm"} <= imports  # the reader sees the package's real imports
    missing = {
        module: distributions.get(module)
        for module in imports
        if not {re.sub(r"[-_.]+", "-", d).lower() for d in distributions.get(module, [module])}
        & provided
    }
    assert missing == {}, f"imported by lnmdn_datasets but not in the datasets extra: {missing}"


def test_agents_extra_includes_datasets():
    assert _requirement_names(EXTRAS["datasets"]) <= _requirement_names(EXTRAS["agents"])


@pytest.mark.parametrize("missing", ["minari", "tqdm"])
def test_missing_datasets_extra_names_it(missing):
    code = f"import sys; sys.modules[{missing!r}] = None; import lnmdn_datasets.provision"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode != 0
    assert "ImportError" in out.stderr and ".[datasets]" in out.stderr, out.stderr
    assert repr(missing) in out.stderr


def test_experts_need_only_the_base_install():
    code = (
        "import sys; sys.modules['minari'] = sys.modules['tqdm'] = None; "
        "import lnmdn_datasets.experts.pusht, lnmdn_datasets.episodes"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
