"""The package layout a newcomer can read: no import cycles, the data plane never reaches up
into the operator tools, no module too long to read in one sitting.

The import graph is read from the sources with :mod:`ast` (nothing is imported), counting every
import: at module level, inside functions and under ``if TYPE_CHECKING``. An edge goes to the
module an import names (``from package import submodule``: to the submodule) and, because Python
runs them first, to the ``__init__`` of each package above it, except the packages the importing
module is itself inside (those are already being imported, so a package that re-exports from
its own submodules is not a cycle). So importing ``memfleet.a.b`` from outside ``memfleet.a``
also imports ``memfleet.a`` and whatever ``memfleet/a/__init__.py`` imports.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2] / "src" / "memfleet"
MAX_LINES = 520
DATA_PLANE = ("protocol", "backends", "routes", "config", "observe", "proxy")
OPERATOR_SIDE = ("fleet", "tools", "kube", "cli", "topology")
# Only the entry points may import the command line: everything else is below it.
CLI_IMPORTERS = {"memfleet.__main__"}
# `memfleet up` starts one `python -m memfleet.fleet.node` per node, so it must stay light:
# this runs it (with --help) and prints the memfleet and pydantic modules it loaded.
NODE_IMPORTS = """
import runpy, sys
sys.argv = ["node", "--help"]
try:
    runpy.run_module("memfleet.fleet.node", run_name="__main__")
except SystemExit:
    pass
print(" ".join(sorted(m for m in sys.modules if m.split(".")[0] in ("memfleet", "pydantic"))))
"""


def module_name(path: Path) -> str:
    """``memfleet.fleet.node.supervisor`` for ``src/memfleet/fleet/node/supervisor.py``."""
    parts = ["memfleet", *path.relative_to(ROOT).with_suffix("").parts]
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def source_files() -> dict[str, Path]:
    """Module name → file, for every module of the package."""
    return {module_name(p): p for p in sorted(ROOT.rglob("*.py"))}


def imported_modules(path: Path, module: str, modules: set[str]) -> set[str]:
    """The modules ``path`` imports: memfleet modules by name (``from a import b`` is ``a.b``
    when that is a module, else ``a``), other packages by their top-level name."""
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    names: list[str] = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
        if isinstance(node, ast.Import):
            names += [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:  # relative: resolved against this module's package
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*anchor, base] if base else anchor)
            names += [
                f"{base}.{alias.name}" if f"{base}.{alias.name}" in modules else base
                for alias in node.names
            ]
    found: set[str] = set()
    for name in names:
        if name.split(".")[0] != "memfleet":
            found.add(name.split(".")[0])
            continue
        # `import a.b.c` where c is a name, not a module: the longest prefix that is one.
        while name not in modules and "." in name:
            name = name.rpartition(".")[0]
        found.add(name)
    found.discard(module)
    return found


def import_graph() -> dict[str, set[str]]:
    """Module → the memfleet modules it imports."""
    files = source_files()
    modules = set(files)
    graph: dict[str, set[str]] = {}
    for module, path in files.items():
        targets: set[str] = set()
        for target in imported_modules(path, module, modules) & modules:
            targets.add(target)
            parent = target.rpartition(".")[0]
            while parent and not (module == parent or module.startswith(parent + ".")):
                targets.add(parent)
                parent = parent.rpartition(".")[0]
        graph[module] = targets & modules
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components with more than one module (Tarjan), sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph.get(v, ())):
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
                found.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return sorted(found)


def cycle_path(graph: dict[str, set[str]], component: list[str]) -> str:
    """One concrete cycle through a component, ``a → b → a``, for the failure message."""
    members = set(component)
    start = component[0]
    path = [start]
    seen = {start}
    while True:
        nxt = sorted(w for w in graph[path[-1]] if w in members)
        back = [w for w in nxt if w == start]
        if back and len(path) > 1:
            return " → ".join([*path, start])
        fresh = [w for w in nxt if w not in seen]
        if not fresh:  # every step leads back into the path: close it where it meets
            w = nxt[0]
            return " → ".join([*path[path.index(w) :], w])
        path.append(fresh[0])
        seen.add(fresh[0])


def in_package(module: str, packages: tuple[str, ...]) -> bool:
    """Whether ``module`` is one of ``memfleet.<package>`` or inside one."""
    return any(module == f"memfleet.{p}" or module.startswith(f"memfleet.{p}.") for p in packages)


def test_the_graph_sees_every_kind_of_import() -> None:
    graph = import_graph()
    # Inside a function (drill_topology imports the hosts module only for the host faults).
    assert "memfleet.fleet.hosts" in graph["memfleet.tools.drill.runner"]
    # The packages above an imported module, whose __init__ runs first.
    assert {"memfleet.fleet", "memfleet.fleet.local"} <= graph["memfleet.cli.fleet"]
    # `from package import submodule`.
    assert "memfleet.kube.cache" in graph["memfleet.kube.render"]


def test_no_import_cycles() -> None:
    graph = import_graph()
    found = [
        f"{cycle_path(graph, c)}\n    (all {len(c)} modules of this cycle: {', '.join(c)})"
        for c in cycles(graph)
    ]
    assert not found, "import cycles:\n  " + "\n  ".join(found)


def test_the_data_plane_does_not_import_the_operator_side() -> None:
    graph = import_graph()
    bad = sorted(
        f"{module} imports {target}"
        for module, targets in graph.items()
        if in_package(module, DATA_PLANE)
        for target in targets
        if in_package(target, OPERATOR_SIDE)
    )
    assert not bad, "the data plane imports the operator side:\n  " + "\n  ".join(bad)


def test_only_the_entry_points_import_the_command_line() -> None:
    graph = import_graph()
    bad = sorted(
        f"{module} imports {target}"
        for module, targets in graph.items()
        if not in_package(module, ("cli",)) and module not in CLI_IMPORTERS
        for target in targets
        if in_package(target, ("cli",))
    )
    assert not bad, "imports pointing up into memfleet.cli:\n  " + "\n  ".join(bad)


def test_the_node_entry_point_does_not_import_the_proxy() -> None:
    # Run, not read: a static walk would follow imports inside functions the node never calls.
    out = subprocess.run(
        [sys.executable, "-c", NODE_IMPORTS], capture_output=True, text=True, check=True
    )
    loaded = out.stdout.splitlines()[-1].split()  # after the --help text
    bad = [m for m in loaded if m == "pydantic" or in_package(m, (*DATA_PLANE, "cli", "kube"))]
    assert "memfleet.fleet.node.supervisor" in loaded
    assert not bad, "python -m memfleet.fleet.node imports:\n  " + "\n  ".join(bad)


def test_the_kubernetes_renderer_has_no_commands() -> None:
    files = source_files()
    bad = sorted(
        module
        for module, path in files.items()
        if in_package(module, ("kube",)) and "click" in imported_modules(path, module, set(files))
    )
    assert not bad, "kube/ is a renderer; its click commands belong in cli/:\n  " + "\n  ".join(bad)


def test_no_module_is_too_long() -> None:
    long = sorted(
        (n, module)
        for module, path in source_files().items()
        if (n := len(path.read_text(encoding="utf-8").splitlines())) > MAX_LINES
    )
    listing = "\n  ".join(f"{module}: {n} lines" for n, module in reversed(long))
    assert not long, f"modules over {MAX_LINES} lines:\n  {listing}"
