"""The import graph runs one way: each layer imports only layers below it, and nothing imports in a circle.

Layers, bottom to top (DESIGN.md section 2). A module may import its own layer and any layer below.
`kling.cli` is the top of the library and may reach into eval/ and pipelines/ lazily (inside functions);
eval/ sits above kling/; pipelines/ (the only place that imports Dagster) sits above both.
"""

from __future__ import annotations

import ast
from collections import defaultdict
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]

# (layer name, module prefixes); order = bottom to top
LAYERS: list[tuple[str, tuple[str, ...]]] = [
    ("base", ("kling.io", "kling.clock", "kling.paths", "kling.weights", "kling.atomic", "kling.hashing",
              "kling.config", "kling.profiles")),
    ("perception", ("kling.perception",)),
    ("llm", ("kling.llm",)),
    ("curate", ("kling.curate", "kling.demo")),
    ("director", ("kling.director",)),
    ("models", ("kling.models", "kling.schedulers")),
    ("train", ("kling.train",)),  # trainers sit above the models they train
    ("generate", ("kling.generate",)),
    ("runtime", ("kling.runtime",)),
    ("cli", ("kling.cli", "kling")),  # "kling" itself: the package __init__
    ("eval", ("eval",)),
    ("pipelines", ("pipelines",)),
]
# kling.cli is the command line over everything: its lazy imports of eval/ and pipelines/ are allowed.
ALLOWED_UP = {("cli", "eval"), ("cli", "pipelines")}


def layer_of(module: str) -> int | None:
    best, rank = None, -1
    for i, (_, prefixes) in enumerate(LAYERS):
        for p in prefixes:
            if (module == p or module.startswith(p + ".")) and len(p) > rank:
                best, rank = i, len(p)
    return best


def module_name(path: Path) -> str:
    rel = path.relative_to(REPO).with_suffix("")
    parts = list(rel.parts)
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(parts)


def imports_of(path: Path, known: set[str]) -> set[str]:
    """Project modules this file imports (top-level or inside functions); `from pkg import module` names
    the module, `from pkg import name` the package."""
    tree = ast.parse(path.read_text(), str(path))
    me = module_name(path)
    pkg = me if path.name == "__init__.py" else me.rpartition(".")[0]
    out = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = pkg.split(".")
                anchor = anchor[: len(anchor) - (node.level - 1)]
                base = ".".join(anchor + ([base] if base else []))
            out.update(f"{base}.{a.name}" if f"{base}.{a.name}" in known else base for a in node.names)
    return {m for m in out if m.split(".")[0] in ("kling", "eval", "pipelines")}


def source_files() -> list[Path]:
    return sorted(p for top in ("kling", "eval", "pipelines") for p in (REPO / top).rglob("*.py"))


def resolve(name: str, known: set[str]) -> str | None:
    """The project module an import names (an imported attribute resolves to its module)."""
    while name and name not in known:
        name = name.rpartition(".")[0]
    return name or None


def graph() -> dict[str, set[str]]:
    files = source_files()
    known = {module_name(p) for p in files}
    edges: dict[str, set[str]] = defaultdict(set)
    for p in files:
        me = module_name(p)
        for imp in imports_of(p, known):
            target = resolve(imp, known)
            if target and target != me:
                edges[me].add(target)
    return edges


def test_every_module_has_a_layer():
    missing = [module_name(p) for p in source_files() if layer_of(module_name(p)) is None]
    assert not missing, f"modules outside every layer (add them to LAYERS): {missing}"


def test_no_arrow_runs_up():
    up = []
    for src, targets in graph().items():
        for dst in targets:
            ls, ld = layer_of(src), layer_of(dst)
            if ld > ls and (LAYERS[ls][0], LAYERS[ld][0]) not in ALLOWED_UP:
                up.append(f"{src} ({LAYERS[ls][0]}) -> {dst} ({LAYERS[ld][0]})")
    assert not up, "imports that run up the layers:\n" + "\n".join(sorted(up))


def test_library_never_imports_dagster():
    bad = []
    for p in source_files():
        if module_name(p).startswith(("kling", "eval")):
            tree = ast.parse(p.read_text())
            for node in ast.walk(tree):
                names = [a.name for a in node.names] if isinstance(node, ast.Import) else \
                    [node.module or ""] if isinstance(node, ast.ImportFrom) else []
                bad += [f"{module_name(p)} imports {n}" for n in names if n.split(".")[0] in ("dagster", "dagster_ray")]
    assert not bad, bad


def _cycles(edges: dict[str, set[str]], key) -> list[list[str]]:
    """Strongly connected components (Tarjan) of the graph with nodes mapped by `key`, larger than one."""
    g: dict[str, set[str]] = defaultdict(set)
    for s, ts in edges.items():
        for t in ts:
            if key(s) != key(t):
                g[key(s)].add(key(t))
    index, low, stack, on, out, counter = {}, {}, [], set(), [], [0]

    def visit(v):
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in sorted(g.get(v, ())):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.append(sorted(comp))

    for v in sorted(set(g) | {t for ts in g.values() for t in ts}):
        if v not in index:
            visit(v)
    return out


def test_no_module_cycles():
    cycles = _cycles(graph(), key=lambda m: m)
    assert not cycles, f"modules importing each other in a circle: {cycles}"


def test_no_package_cycles():
    # packages (folders) must not import each other in a circle either: kling.curate <-> kling.train, ...
    def package(m: str) -> str:
        parts = m.split(".")
        return ".".join(parts[:2]) if parts[0] == "kling" else parts[0] if parts[0] != "eval" else ".".join(parts[:2])

    cycles = _cycles(graph(), key=package)
    assert not cycles, f"packages importing each other in a circle: {cycles}"


def test_walker_sees_an_upward_arrow(tmp_path):
    # the check itself can fail: a perception module importing eval is an arrow up
    assert layer_of("eval.suite") > layer_of("kling.perception.sync.pipeline")
    assert ("perception", "eval") not in ALLOWED_UP
    assert _cycles({"a": {"b"}, "b": {"a"}}, key=lambda m: m) == [["a", "b"]]
