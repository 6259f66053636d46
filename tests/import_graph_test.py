"""ferzoo's import graph, read from the source (nothing is imported).

Presets know files and configs; backbones and methods know presets, not
the other way round. The graph counts every `import`, `from ... import`
and `importlib.import_module("...")` with a literal name, at any depth
(imports inside functions included). The top-level `ferzoo` package is
left out: every submodule's import runs it, and it is the class registry
(`ferzoo._register_classes`), above every layer.

Check another tree (e.g. an older checkout) with
`python tests/import_graph_test.py PATH/TO/ferzoo`, or set
`FERZOO_IMPORT_GRAPH_DIR=PATH/TO/ferzoo` for pytest.
"""

import ast
import os
import pathlib
import sys

ROOT = "ferzoo"
PRESETS = "ferzoo.presets"
LOWER_THAN_PRESETS = ("ferzoo.backbones", "ferzoo.models")
PACKAGE_DIR = pathlib.Path(
    os.environ.get(
        "FERZOO_IMPORT_GRAPH_DIR",
        pathlib.Path(__file__).resolve().parent.parent / ROOT,
    )
)


def _module_names(package_dir):
    """`{module name: file}` for every `.py` file under `package_dir`."""
    package_dir = pathlib.Path(package_dir)
    root = package_dir.name
    out = {}
    for path in sorted(package_dir.rglob("*.py")):
        parts = (root, *path.relative_to(package_dir).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        out[".".join(parts)] = path
    return out


def _imported_names(tree, module, is_package):
    """Module names imported anywhere in `tree` (candidates, not checked)."""
    package = module if is_package else module.rpartition(".")[0]
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield alias.name
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - node.level + 1]
                prefix = ".".join(base + ([node.module] if node.module else []))
            else:
                prefix = node.module
            for alias in node.names:
                # A submodule if one exists, else (a name in) `prefix`.
                yield f"{prefix}.{alias.name}"
        elif (
            isinstance(node, ast.Call)
            and isinstance(node.func, (ast.Attribute, ast.Name))
            and getattr(node.func, "attr", getattr(node.func, "id", None))
            == "import_module"
            and node.args
            and isinstance(node.args[0], ast.Constant)
            and isinstance(node.args[0].value, str)
        ):
            yield node.args[0].value


def import_graph(package_dir=PACKAGE_DIR):
    """`{module: set of ferzoo modules it imports}`, without the root."""
    modules = _module_names(package_dir)
    graph = {}
    for module, path in modules.items():
        tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
        is_package = path.name == "__init__.py"
        targets = set()
        for name in _imported_names(tree, module, is_package):
            # `from a.b import C` may name a class (or `*`): keep the
            # longest prefix that is a module.
            while name and name not in modules:
                name = name.rpartition(".")[0]
            if name and name != ROOT and name != module:
                targets.add(name)
        graph[module] = targets
    graph.pop(ROOT, None)
    return graph


def _in_checked_layers(module):
    return module == PRESETS or any(
        module == p or module.startswith(p + ".") for p in LOWER_THAN_PRESETS
    )


def presets_violations(graph):
    """Imports of backbones or models by `ferzoo.presets`."""
    return sorted(
        t
        for t in graph.get(PRESETS, ())
        if t != PRESETS and _in_checked_layers(t)
    )


def find_cycle(graph, start_nodes):
    """A cycle through any of `start_nodes` as a list of modules, or None."""
    for start in sorted(start_nodes):
        # Depth-first search for a path from `start` back to `start`.
        stack = [(start, [start])]
        seen = set()
        while stack:
            node, path = stack.pop()
            for target in sorted(graph.get(node, ())):
                if target == start:
                    return path + [start]
                if target not in seen:
                    seen.add(target)
                    stack.append((target, path + [target]))
    return None


def layer_cycle(graph):
    """An import cycle through presets, backbones or models, or None."""
    return find_cycle(graph, [m for m in graph if _in_checked_layers(m)])


def test_the_graph_is_read():
    # Guards the checks below against an empty or misread graph.
    graph = import_graph()
    assert PRESETS in graph
    assert PRESETS in graph["ferzoo.backbones.backbone"]
    assert "ferzoo.backbones.backbone" in graph["ferzoo.models.arguments"]
    assert (
        "ferzoo.models.arguments"
        in graph["ferzoo.models.noisy_label_classifier"]
    )
    assert (
        "ferzoo.layers.sample_table"
        in graph["ferzoo.models.noisy_label_classifier"]
    )


def test_imports_inside_functions_and_cycles_are_seen(tmp_path):
    # A small package with the old circle: a lazy import in a function.
    pkg = tmp_path / ROOT
    (pkg / "backbones").mkdir(parents=True)
    (pkg / "__init__.py").write_text("")
    (pkg / "presets.py").write_text(
        "def load():\n    from ferzoo.backbones.backbone import Backbone\n"
    )
    (pkg / "backbones" / "__init__.py").write_text(
        "from ferzoo.backbones.backbone import Backbone\n"
    )
    (pkg / "backbones" / "backbone.py").write_text(
        "from ferzoo import presets as preset_utils\n"
    )
    graph = import_graph(pkg)
    assert presets_violations(graph) == ["ferzoo.backbones.backbone"]
    assert layer_cycle(graph) == [
        "ferzoo.backbones.backbone",
        PRESETS,
        "ferzoo.backbones.backbone",
    ]
    # Without the lazy import, neither check fires.
    (pkg / "presets.py").write_text("import json\n")
    graph = import_graph(pkg)
    assert presets_violations(graph) == []
    assert layer_cycle(graph) is None


def test_presets_import_no_backbones_or_models():
    assert presets_violations(import_graph()) == []


def test_no_cycle_among_presets_backbones_and_models():
    cycle = layer_cycle(import_graph())
    assert cycle is None, " -> ".join(cycle)


if __name__ == "__main__":
    graph = import_graph(sys.argv[1] if len(sys.argv) > 1 else PACKAGE_DIR)
    violations = presets_violations(graph)
    cycle = layer_cycle(graph)
    print("ferzoo.presets imports:", ", ".join(violations) or "nothing lower")
    print("cycle:", " -> ".join(cycle) if cycle else "none")
    sys.exit(1 if violations or cycle else 0)
