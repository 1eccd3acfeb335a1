"""The package's import graph: no cycles, and no module imports one of a higher layer.

Every `import` of an `md_csd_tf` module is read with `ast`, at module level and inside
functions alike (a lazy import still ties two modules together, and is how cycles hide), but
not under `if TYPE_CHECKING:` (never run; annotations only). Layers, lowest first; a module may
import its own group and any lower layer, never a higher layer nor a sibling group of its own:

    base        errors, names, files, paper, frequency, losses, optimizers, keras_compat,
                mixed_precision,
                layers/ (the pieces a saved model is made of, and the helpers every layer uses)
    data        data/ (manifest, tf.data pipeline, crop -> model inputs, pseudo-fakes)
    prep        prep/ (layouts, face crops, landmarks, the extraction job, stand-in dataset)
    models      models/ (registry, detectors, saving: the one home for loading a model)
    evaluation  evaluation/ (metrics, evaluate_model, the results tables)
    use         training/ | inference/ (siblings: neither imports the other)
    workflows   workflows/ (paper tables, demo, leaderboard), configs/, pretraining, serve/ (web app)
    commands    commands/ (`md-csd` subcommands: parse arguments, call the layers below)
    top         cli, bench, md_csd_tf itself (its public names are imported lazily)

Scripts in `experiments/` and `data_prep/` stand above all of these.

Not seen: imports by name at run time. `md_csd_tf.models.import_all` imports every module of
models/ with `importlib` (how detectors are discovered, not listed), so registry, saving and the
detector modules meet at run time without an `import` statement; all of them are models/, the
same layer, and each module's own statements are still checked.
"""

from __future__ import annotations

import ast
from pathlib import Path

import md_csd_tf

PACKAGE = Path(md_csd_tf.__file__).parent

#: (layer, groups): a group is a tuple of module prefixes; groups of one layer are siblings.
LAYERS = (
    (
        "base",
        (
            (
                "md_csd_tf._version",
                "md_csd_tf.errors",
                "md_csd_tf.names",
                "md_csd_tf.files",
                "md_csd_tf.paper",
                "md_csd_tf.frequency",
                "md_csd_tf.losses",
                "md_csd_tf.optimizers",
                "md_csd_tf.keras_compat",
                "md_csd_tf.mixed_precision",
                "md_csd_tf.layers",
            ),
        ),
    ),
    ("data", (("md_csd_tf.data",),)),
    ("prep", (("md_csd_tf.prep",),)),
    ("models", (("md_csd_tf.models",),)),
    ("evaluation", (("md_csd_tf.evaluation",),)),
    ("use", (("md_csd_tf.training",), ("md_csd_tf.inference",))),
    (
        "workflows",
        (("md_csd_tf.workflows", "md_csd_tf.configs", "md_csd_tf.pretraining", "md_csd_tf.serve"),),
    ),
    ("commands", (("md_csd_tf.commands",),)),
    ("top", (("md_csd_tf.cli", "md_csd_tf.bench", "md_csd_tf"),)),
)


def _modules() -> dict[str, Path]:
    found = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        parts = ("md_csd_tf", *path.relative_to(PACKAGE).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        found[".".join(parts)] = path
    return found


def _owner(name: str, modules) -> str:
    """The module `name` lives in (`a.b.func` -> `a.b`)."""
    while name not in modules:
        name = name.rpartition(".")[0]
    return name


def _is_type_checking(node: ast.If) -> bool:
    test = node.test
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _imports(module: str, path: Path, modules) -> dict[str, int]:
    """The md_csd_tf modules `module` imports, each with the first line that does."""
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    found: dict[str, int] = {}

    def add(name: str, line: int) -> None:
        if name == "md_csd_tf" or name.startswith("md_csd_tf."):
            target = _owner(name, modules)
            if target != module:
                found.setdefault(target, line)

    def visit(node) -> None:
        if isinstance(node, ast.If) and _is_type_checking(node):
            for child in node.orelse:
                visit(child)
            return
        if isinstance(node, ast.Import):
            for alias in node.names:
                add(alias.name, node.lineno)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                source = ".".join(base + ([node.module] if node.module else []))
            else:
                source = node.module or ""
            for alias in node.names:  # `from pkg import module` imports the module
                add(f"{source}.{alias.name}", node.lineno)
        for child in ast.iter_child_nodes(node):
            visit(child)

    visit(ast.parse(path.read_text(encoding="utf-8")))
    return found


def _graph() -> tuple[dict[str, dict[str, int]], dict[str, Path]]:
    modules = _modules()
    return {m: _imports(m, p, modules) for m, p in modules.items()}, modules


def _place(module: str) -> tuple[int, int]:
    """(layer index, group index) of `module`, by its longest listed prefix."""
    best, length = None, -1
    for rank, (_, groups) in enumerate(LAYERS):
        for group, prefixes in enumerate(groups):
            for prefix in prefixes:
                if (module == prefix or module.startswith(prefix + ".")) and len(prefix) > length:
                    best, length = (rank, group), len(prefix)
    return best


def _cycles(graph: dict[str, dict[str, int]]) -> list[tuple[set[str], list[str]]]:
    """Each strongly connected set of modules (they import each other, directly or round a
    cycle) with one cycle through it, a path that ends where it starts."""
    index, low, stack, on_stack, sets = {}, {}, [], set(), []

    def connect(node: str) -> None:  # Tarjan's algorithm
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for target in graph[node]:
            if target not in index:
                connect(target)
                low[node] = min(low[node], low[target])
            elif target in on_stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            members = set()
            while True:
                member = stack.pop()
                on_stack.discard(member)
                members.add(member)
                if member == node:
                    break
            if len(members) > 1:
                sets.append(members)

    for node in sorted(graph):
        if node not in index:
            connect(node)
    cycles = []
    for members in sets:
        start = min(members)
        path, seen = [start], {start: 0}
        while True:  # follow edges inside the set until a module repeats
            target = min(t for t in graph[path[-1]] if t in members)
            if target in seen:
                cycles.append((members, path[seen[target] :] + [target]))
                break
            seen[target] = len(path)
            path.append(target)
    return cycles


def test_every_module_has_a_layer():
    graph, _ = _graph()
    assert [m for m in graph if _place(m) is None] == []


def test_no_import_cycles():
    graph, _ = _graph()
    cycles = [" -> ".join(path) for _, path in _cycles(graph)]
    assert cycles == [], "import cycles:\n" + "\n".join(cycles)


def test_no_module_imports_a_higher_layer_or_a_sibling():
    graph, modules = _graph()
    wrong = []
    for module, targets in sorted(graph.items()):
        rank, group = _place(module)
        for target, line in sorted(targets.items()):
            target_rank, target_group = _place(target)
            layer = LAYERS[target_rank][0]
            if target_rank > rank:
                why = f"a higher layer ({layer})"
            elif target_rank == rank and target_group != group:
                why = f"a sibling of its layer ({layer})"
            else:
                continue
            where = modules[module].relative_to(PACKAGE.parent)
            wrong.append(f"{where}:{line}: {module} imports {target}, {why}")
    assert wrong == [], "layering violations:\n" + "\n".join(wrong)


def test_the_checks_find_what_they_look_for():
    """The checks themselves: a made-up cycle and the layer of made-up modules."""
    graph = {"a": {"b": 1}, "b": {"c": 1}, "c": {"a": 1}, "d": {"a": 1}}
    assert _cycles(graph) == [({"a", "b", "c"}, ["a", "b", "c", "a"])]
    assert _place("md_csd_tf.models.saving") < _place("md_csd_tf.training.trainer")
    assert _place("md_csd_tf.training.x")[0] == _place("md_csd_tf.inference.x")[0]
    assert _place("md_csd_tf.training.x") != _place("md_csd_tf.inference.x")
