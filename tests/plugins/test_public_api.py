"""Plugin distributions in this repository (``plugins/voltx-*/``) import only voltx's public API.

Every ``.py`` file of every such distribution (its package and its tests) is parsed with ``ast``;
an import of a voltx module that is not in :data:`voltx.public_api.PUBLIC_MODULES` (``import``,
``from ... import``, a ``"module:attr"`` string is not an import and is not checked) fails, naming
the file, the line and the module. The fix is to make the module public (and document it in
docs/plugins.md), not to reach past the list.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from voltx.public_api import PUBLIC_MODULES, is_public

REPO = Path(__file__).resolve().parents[2]
DISTRIBUTIONS = sorted(p for p in (REPO / "plugins").glob("voltx-*") if (p / "pyproject.toml").is_file())


def voltx_imports(path: Path) -> list[tuple[int, str]]:
    """(line, module) of every import of a voltx module in ``path`` (``from voltx import x`` names
    ``voltx.x`` when ``x`` is a module, since that imports the module)."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found.append((node.lineno, node.module))
            found += [(node.lineno, f"{node.module}.{alias.name}") for alias in node.names
                      if node.module.split(".")[0] == "voltx" and _is_module(f"{node.module}.{alias.name}")]
    return [(line, name) for line, name in found if name == "voltx" or name.startswith("voltx.")]


def _is_module(name: str) -> bool:
    """Whether voltx module ``name`` exists, by its file (importing it would import torch)."""
    import voltx

    base = Path(voltx.__file__).resolve().parent.parent / Path(*name.split("."))
    return base.with_suffix(".py").is_file() or (base / "__init__.py").is_file()


def test_the_distributions_are_found():
    assert any(d.name == "voltx-lvm" for d in DISTRIBUTIONS), [d.name for d in DISTRIBUTIONS]


@pytest.mark.parametrize("dist", DISTRIBUTIONS, ids=lambda d: d.name)
def test_a_distribution_imports_only_public_voltx_modules(dist):
    files = sorted(f for f in dist.rglob("*.py") if ".venv" not in f.parts and "build" not in f.parts)
    assert files, f"{dist}: no Python files"
    private = [f"{f.relative_to(REPO)}:{line}: {name}" for f in files for line, name in voltx_imports(f) if not is_public(name)]
    assert not private, ("private voltx modules imported (make them public in voltx/public_api.py and document "
                         "them in docs/plugins.md, or use a public one):\n" + "\n".join(private))


def test_the_checker_catches_a_private_import(tmp_path):
    src = tmp_path / "mod.py"
    src.write_text("import voltx.runs.store\nfrom voltx.train import loop\nfrom voltx.train.kit import Hyper\nimport numpy\n")
    names = [name for _, name in voltx_imports(src)]
    assert names == ["voltx.runs.store", "voltx.train", "voltx.train.loop", "voltx.train.kit"]
    assert [n for n in names if not is_public(n)] == ["voltx.runs.store", "voltx.train", "voltx.train.loop"]


def test_every_public_module_exists():
    missing = [name for name in PUBLIC_MODULES if not _is_module(name)]
    assert not missing, missing


def test_each_public_module_is_listed_once():
    from voltx.public_api import PUBLIC_MODULES

    assert len(PUBLIC_MODULES) == len(set(PUBLIC_MODULES))
