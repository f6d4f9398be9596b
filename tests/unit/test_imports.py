"""The package's structure, read with ``ast``: no import circles, the pipeline's layers (data, then scoring and
ranking, then service, then ui and app) importing only down, one scorer registry."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("data", "ranking", "scoring", "service", "ui")
SCORER_NAMES = {"intertraining", "free_energy", "sample_efficiency", "linear_probe"}
# ``python -m data|scoring|ranking``: thin shims over service/cli/programs.py, outside the layers
ENTRY_POINTS = {"data/__main__.py", "scoring/__main__.py", "ranking/__main__.py"}
# what each package may not import: each layer imports only the layers below it (data.store is the store)
FORBIDDEN = {
    "data": ("scoring", "ranking", "service", "ui", "app"),
    "scoring": ("data.store", "ranking", "service", "ui", "app"),
    "ranking": ("data.store", "scoring", "service", "ui", "app"),
    "service": ("ui", "app"),
    "ui": ("scoring", "app"),
}


def module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def sources() -> dict[str, tuple[Path, ast.Module]]:
    files = [ROOT / "app.py", *(p for pkg in PACKAGES for p in (ROOT / pkg).rglob("*.py"))]
    return {module_name(p): (p, ast.parse(p.read_text(), str(p))) for p in files}


SOURCES = sources()


def imported(module: str, tree: ast.AST, *, top_level_only: bool) -> set[str]:
    """Project modules ``module`` imports (``from a.b import c`` counts a.b.c when that is a module)."""
    nodes = tree.body if top_level_only else list(ast.walk(tree))
    found = set()
    for node in nodes:
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                package = module.split(".")[: len(module.split(".")) - node.level + (module in _packages())]
                base = ".".join([*package, *([base] if base else [])])
            submodules = {f"{base}.{a.name}" for a in node.names if f"{base}.{a.name}" in SOURCES}
            found |= submodules or {base}  # ``from pkg import module`` depends on the module
    return {m for m in found if m in SOURCES}


def _packages() -> set[str]:
    return {m for m, (p, _) in SOURCES.items() if p.name == "__init__.py"}


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One import circle of ``graph`` (module -> modules it imports) as a path, or None."""
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(m: str) -> list[str] | None:
        state[m] = 1
        stack.append(m)
        for n in sorted(graph.get(m, ())):
            if state.get(n) == 1:
                return stack[stack.index(n):] + [n]
            if n not in state and (cycle := visit(n)):
                return cycle
        state[m] = 2
        stack.pop()
        return None

    for m in sorted(graph):
        if m not in state and (cycle := visit(m)):
            return cycle
    return None


def test_no_import_circles_at_module_level():
    # a package's own modules may import their package (Python imports it first): not a circle
    graph = {m: {n for n in imported(m, tree, top_level_only=True) if not (m == n or m.startswith(n + "."))}
             for m, (_, tree) in SOURCES.items()}
    assert sum(map(len, graph.values())) > 100, "the import graph was not read"
    cycle = find_cycle(graph)
    assert cycle is None, f"import circle: {' -> '.join(cycle)}"


def test_no_import_circles_through_imports_inside_functions_either():
    """A function-level import defers a circle to run time but keeps the modules tangled (issue 32: scoring had one
    through five modules). The three ``__main__`` shims are command entry points, not modules anyone imports."""
    graph = {m: {n for n in imported(m, tree, top_level_only=False) if not (m == n or m.startswith(n + "."))}
             for m, (_, tree) in SOURCES.items() if not m.endswith("__main__")}
    cycle = find_cycle(graph)
    assert cycle is None, f"import circle: {' -> '.join(cycle)}"


def test_the_cycle_finder_finds_a_circle_and_reads_imports():
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": set()}) is None
    assert imported("data.errors", ast.parse("import data.records\nfrom data import store\n"),
                    top_level_only=True) == {"data.records", "data.store"}


def up_the_pipeline(sources: dict[str, tuple[Path, ast.Module]]) -> dict[str, list[str]]:
    """Each module's imports (at any depth, inside functions too) that its package may not make (FORBIDDEN)."""
    found = {}
    for module, (path, tree) in sources.items():
        if path.relative_to(ROOT).as_posix() in ENTRY_POINTS:
            continue
        banned = FORBIDDEN.get(module.split(".")[0], ())
        if bad := sorted(m for m in imported(module, tree, top_level_only=False)
                         if any(m == b or m.startswith(b + ".") for b in banned)):
            found[module] = bad
    return found


def test_no_import_goes_up_the_pipeline():
    """scoring/ computes and ranking/ ranks (neither reads the store nor the other); data/ imports no layer above
    it; ui/ reaches scoring only through service/."""
    assert up_the_pipeline(SOURCES) == {}


def test_the_layer_check_finds_an_import_up_the_pipeline():
    fake = {"scoring.x": (ROOT / "scoring" / "x.py", ast.parse("def f():\n    from data.store import Store\n")),
            "ui.y": (ROOT / "ui" / "y.py", ast.parse("import scoring.registry\n"))}
    assert {"scoring.x", "ui.y"} <= set(up_the_pipeline({**SOURCES, **fake}))


def scorer_name_comparisons(tree: ast.AST) -> list[int]:
    """Lines comparing something with a scorer's name (``x == "intertraining"``, ``name in ("a", "b")``)."""
    lines = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Compare):
            sides = [node.left, *node.comparators]
            if any(isinstance(side, ast.Attribute) and side.attr == "metric" for side in sides):
                continue  # a metric's name (the free_energy metric), not a scorer's
            literals = {c.value for s in sides for c in ast.walk(s) if isinstance(c, ast.Constant)}
            if literals & SCORER_NAMES:
                lines.append(node.lineno)
        elif isinstance(node, ast.match_case):
            if {c.value for c in ast.walk(node.pattern) if isinstance(c, ast.Constant)} & SCORER_NAMES:
                lines.append(node.pattern.lineno)
    return lines


def test_no_scorer_dispatch_by_name_outside_the_registry():
    found = {}
    for module, (_, tree) in SOURCES.items():
        if module != "scoring.registry" and (lines := scorer_name_comparisons(tree)):
            found[module] = lines
    assert not found, f"scorer names compared outside scoring/registry.py (use the registry): {found}"


def test_scorer_classes_are_built_only_by_the_registry():
    built = {}
    for module, (_, tree) in SOURCES.items():
        calls = [n.lineno for n in ast.walk(tree) if isinstance(n, ast.Call) and isinstance(n.func, ast.Name)
                 and n.func.id.endswith("Scorer") and n.func.id != "RegisteredScorer"]
        if calls and module != "scoring.registry":
            built[module] = calls
    assert not built, f"scorers constructed outside registry.build: {built}"


@pytest.mark.parametrize("code", ['if name == "linear_probe":\n    pass\n',
                                  'match job.scorer:\n    case "free_energy":\n        pass\n',
                                  'x = scorer in ("intertraining", "other")\n'])
def test_the_dispatch_check_catches_each_form(code):
    assert scorer_name_comparisons(ast.parse(code))


def test_readme_layout_names_every_top_level_package_and_module():
    readme = (ROOT / "README.md").read_text()
    layout = readme[readme.index("## Layout"):]
    layout = layout[: layout.index("\n## ", 4)]
    tracked = {p.name for p in ROOT.iterdir() if (p.is_dir() and (p / "__init__.py").exists()) or p.name == "app.py"}
    tracked |= {"benchmarks"}
    for name in sorted(tracked):
        assert f"\n{name}" in layout, f"README's Layout does not describe {name}"
    for line in layout.splitlines():
        head = line.split(" ", 1)[0].rstrip("/")
        if line and not line.startswith(("#", "`", " ")) and "/" in line.split(" ", 1)[0]:
            assert (ROOT / head).exists(), f"README's Layout names {head}, which is not in the tree"


def test_payloads_are_read_by_field_not_by_string():
    """``score.extra["key"]`` or ``.extra.get("key")`` outside data/payloads.py bypasses the typed payloads."""
    found = {}
    for module, (_, tree) in SOURCES.items():
        lines = [n.lineno for n in ast.walk(tree)
                 if (isinstance(n, ast.Subscript) and isinstance(n.value, ast.Attribute) and n.value.attr == "extra")
                 or (isinstance(n, ast.Attribute) and n.attr == "get" and isinstance(n.value, ast.Attribute)
                     and n.value.attr == "extra")]
        if lines and module != "data.payloads":
            found[module] = lines
    assert not found, f"payloads read by string (use data.payloads.payload_of): {found}"
