"""The layout keeps its layers: no import circles (deferred imports inside functions count too),
measuring and generating never reach into training, and every module says what it is for."""

import ast
from pathlib import Path

import wganlab

ROOT = Path(wganlab.__file__).parent
# Lower layers first; a module may import from its own layer or the ones before it.
NEVER_IMPORT_TRAINING = ("wganlab.base", "wganlab.data", "wganlab.metrics", "wganlab.generate",
                         "wganlab.models", "wganlab.losses", "wganlab.config",
                         "wganlab.augment")


def module_name(path: Path) -> str:
    parts = ("wganlab", *path.relative_to(ROOT).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def resolve(node: ast.ImportFrom, current: str, is_package: bool, modules: set) -> list[str]:
    """The wganlab modules a `from X import a, b` names: submodules where they are, else X."""
    base = current if is_package else current.rpartition(".")[0]
    for _ in range(node.level - 1):
        base = base.rpartition(".")[0]
    target = node.module if node.level == 0 else ".".join(p for p in (base, node.module) if p)
    if not target or not target.startswith("wganlab"):
        return []
    names = [f"{target}.{a.name}" for a in node.names]
    subs = [n for n in names if n in modules]
    return subs + ([target] if len(subs) < len(names) else [])


def import_graph() -> dict[str, set[str]]:
    files = {module_name(p): p for p in ROOT.rglob("*.py")}
    graph = {name: set() for name in files}
    for name, path in files.items():
        tree = ast.parse(path.read_text())
        typing_only = {id(n) for stmt in ast.walk(tree) if isinstance(stmt, ast.If)
                       and getattr(stmt.test, "id", None) == "TYPE_CHECKING"
                       for n in ast.walk(stmt)}  # imports for annotations are not run
        for node in ast.walk(tree):
            if id(node) in typing_only:
                continue
            if isinstance(node, ast.ImportFrom):
                graph[name] |= set(resolve(node, name, path.name == "__init__.py", set(files)))
            elif isinstance(node, ast.Import):
                graph[name] |= {a.name for a in node.names if a.name in files}
        graph[name].discard(name)
    return graph


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    state, stack = {}, []

    def visit(node):
        state[node] = "open"
        stack.append(node)
        for nxt in sorted(graph[node]):
            if state.get(nxt) == "open":
                return stack[stack.index(nxt):] + [nxt]
            if nxt not in state and (found := visit(nxt)):
                return found
        stack.pop()
        state[node] = "done"
        return None

    for node in sorted(graph):
        if node not in state and (found := visit(node)):
            return found
    return None


def reaches(graph: dict[str, set[str]], start: str) -> set[str]:
    seen, todo = set(), [start]
    while todo:
        for nxt in graph[todo.pop()] - seen:
            seen.add(nxt)
            todo.append(nxt)
    return seen


def test_the_graph_sees_deferred_imports():
    graph = import_graph()
    assert "wganlab.training.loop" in graph["wganlab.api"]  # imported inside train()
    # `from ..metrics import health` names a submodule, not the package
    assert "wganlab.metrics.health" in graph["wganlab.training.loop"]
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]


def test_no_import_circles():
    assert find_cycle(import_graph()) is None


def test_measuring_and_generating_never_import_training():
    graph = import_graph()
    for start in graph:
        if start.startswith(NEVER_IMPORT_TRAINING):
            bad = sorted(m for m in reaches(graph, start) if m.startswith("wganlab.training"))
            assert not bad, f"{start} reaches {bad}"


# The parts, lowest first: a part imports only from its own layer and the layers below it.
LAYERS = [
    {"errors", "version", "base"},  # plain helpers: files, checkpoints, devices, pixels
    # the config and its checks (which size the networks), data and the maths
    {"config", "validation", "data", "models", "ensemble", "losses", "augment", "conditioning",
     "distances", "summary", "runfiles", "runfolder"},  # with the run files' readers
    {"generate", "hub"},  # a trained generator in and out
    {"metrics"},  # features and numbers
    {"reporting"},  # figures and report.html from a run directory
    {"training"},  # the loop, which logs, measures and reports as it goes
    {"bench"},  # speed and sweeps, built on training
    {"api", "cli", "__main__", "wganlab"},  # thin: parse or wrap, then call
]


def part(module: str) -> str:
    return module.split(".")[1] if "." in module else module


def test_parts_import_only_their_own_or_lower_layers():
    layer = {name: i for i, names in enumerate(LAYERS) for name in names}
    graph = import_graph()
    assert {part(m) for m in graph} <= set(layer), "a new part: give it a layer here"
    upward = sorted(f"{m} -> {d}" for m, deps in graph.items() for d in deps
                    if layer[part(d)] > layer[part(m)])
    assert not upward


def test_no_module_imports_the_package_facade():
    """wganlab/__init__ re-exports the API; importing it from inside would close a circle."""
    graph = import_graph()
    assert not [m for m, deps in graph.items() if "wganlab" in deps and m != "wganlab"]


def test_every_module_has_a_docstring():
    missing = [module_name(p) for p in ROOT.rglob("*.py")
               if not ast.get_docstring(ast.parse(p.read_text()))]
    assert not missing


def public_definitions(path: Path):
    """(qualified name, node) of every public function, class and method in a file."""
    def walk(body, prefix):
        for node in body:
            if isinstance(node, (ast.FunctionDef, ast.ClassDef)) and not node.name.startswith("_"):
                yield prefix + node.name, node
                if isinstance(node, ast.ClassDef):
                    yield from walk(node.body, f"{prefix}{node.name}.")
    yield from walk(ast.parse(path.read_text()).body, "")


def test_public_definitions_have_docstrings():
    missing = [f"{module_name(p)}.{name}" for p in sorted(ROOT.rglob("*.py"))
               for name, node in public_definitions(p) if not ast.get_docstring(node)]
    assert not missing


def test_everything_import_wganlab_offers_is_documented():
    for name in wganlab.__all__:
        obj = getattr(wganlab, name)
        if name == "__version__":
            continue
        assert (obj.__doc__ or "").strip(), name
        for attr, member in vars(obj).items() if isinstance(obj, type) else ():
            if callable(member) and not attr.startswith("_"):
                assert (member.__doc__ or "").strip(), f"{name}.{attr}"
