"""The package's import graph: no cycle, counting imports inside functions and ``importlib.import_module("...")``
strings too; ``params.py`` imports nothing of the package but its errors, and its name tables match the registries."""

import ast
from pathlib import Path

import sb3_mario
from sb3_mario import config, params
from sb3_mario.envs import actions

PACKAGE = Path(sb3_mario.__file__).parent


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {module_name(path): path for path in PACKAGE.rglob("*.py")}


def imports_of(name: str) -> set[str]:
    """The package's modules that module ``name`` imports anywhere in its source (top level, functions, strings)."""
    path = MODULES[name]
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found: set[str] = set()

    def add(target: str, names: list[str] | None = None) -> None:
        for candidate in [f"{target}.{n}" for n in names or []] or [target]:
            if candidate in MODULES:
                found.add(candidate)
            elif target in MODULES:
                found.add(target)  # a name defined in the module (or package __init__) itself

    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            for alias in node.names:
                add(alias.name)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                base = ".".join([*package.split(".")[: len(package.split(".")) - node.level + 1], *filter(None, [base])])
            add(base, [alias.name for alias in node.names])
        elif (
            isinstance(node, ast.Call)
            and getattr(node.func, "attr", getattr(node.func, "id", None)) == "import_module"
            and node.args
            and isinstance(node.args[0], ast.Constant)
            and isinstance(node.args[0].value, str)
        ):
            add(node.args[0].value)
    found.discard(name)
    return found


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    path: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        path.append(node)
        for nxt in sorted(graph[node]):
            if state.get(nxt) == 1:
                return [*path[path.index(nxt) :], nxt]
            if nxt not in state and (cycle := visit(nxt)):
                return cycle
        path.pop()
        state[node] = 2
        return None

    for node in sorted(graph):
        if node not in state and (cycle := visit(node)):
            return cycle
    return None


def test_the_walk_sees_imports_in_functions_and_import_module_strings():
    assert "sb3_mario.envs.factory" in imports_of("sb3_mario.portable")  # imported inside a function
    assert "sb3_mario.envs.actions" in imports_of("sb3_mario.envs")  # a package's __init__
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": set()}) is None


def test_no_import_cycle_in_the_package():
    graph = {name: imports_of(name) for name in MODULES}
    assert find_cycle(graph) is None, " -> ".join(find_cycle(graph) or [])


def test_params_imports_only_errors_and_its_name_tables_match_the_registries():
    assert imports_of("sb3_mario.params") == {"sb3_mario.errors"}
    for registry, names in params.REGISTRY_NAMES.items():
        assert tuple(getattr(config, registry)) == names, registry
    assert tuple(actions.ACTION_SETS) == params.ACTION_SET_NAMES
    assert tuple(actions.BUTTON_BITS) == params.BUTTON_NAMES
