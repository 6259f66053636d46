"""Structure numbers of the `ferzoo` package (issue 31's measures).

Prints functions longer than `--max-function` lines (not counting the
docstring), modules longer than `--max-module` lines, and import cycles
between modules, counting imports inside functions. `from pkg import
name` is an edge to `pkg.name` where that is a module, else to `pkg`.

    python scripts/structure.py            # the report; exit 1 if over
    python scripts/structure.py --quiet    # the counts only
"""

import argparse
import ast
import pathlib
import sys

ROOT = pathlib.Path(__file__).resolve().parents[1]


def module_name(path, package_root):
    rel = path.relative_to(package_root.parent).with_suffix("")
    parts = list(rel.parts)
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(parts)


def function_lengths(tree):
    """(qualified name, first line, length without docstring) per def."""
    out = []

    def visit(node, prefix):
        for child in ast.iter_child_nodes(node):
            if isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef)):
                length = child.end_lineno - child.lineno + 1
                body = child.body
                if (
                    body
                    and isinstance(body[0], ast.Expr)
                    and isinstance(body[0].value, ast.Constant)
                    and isinstance(body[0].value.value, str)
                ):
                    length -= body[0].end_lineno - body[0].lineno + 1
                name = f"{prefix}{child.name}"
                out.append((name, child.lineno, length))
                visit(child, name + ".")
            elif isinstance(child, ast.ClassDef):
                visit(child, f"{prefix}{child.name}.")
            else:
                visit(child, prefix)

    visit(tree, "")
    return out


def import_edges(tree, name, is_package, modules):
    edges = set()
    for node in ast.walk(tree):
        targets = []
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = name.split(".")
                if not is_package:
                    base = base[:-1]
                base = base[: len(base) - (node.level - 1)]
                mod = ".".join(base + ([node.module] if node.module else []))
            else:
                mod = node.module or ""
            for alias in node.names:
                full = f"{mod}.{alias.name}"
                targets.append(full if full in modules else mod)
        for target in targets:
            while target and target not in modules:
                target = target.rpartition(".")[0]
            if target and target != name:
                edges.add(target)
    return edges


def cycles(graph):
    """Strongly connected components with more than one module."""
    index, low, stack, on_stack, out = {}, {}, [], set(), []
    counter = [0]

    def strong(v):
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph.get(v, ())):
            if w not in index:
                strong(w)
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
                out.append(sorted(component))

    sys.setrecursionlimit(10000)
    for v in sorted(graph):
        if v not in index:
            strong(v)
    return out


def measure(package_root, max_function, max_module):
    paths = sorted(package_root.rglob("*.py"))
    modules = {module_name(p, package_root): p for p in paths}
    long_functions, long_modules, graph = [], [], {}
    for name, path in modules.items():
        text = path.read_text()
        tree = ast.parse(text, filename=str(path))
        lines = len(text.splitlines())
        rel = path.relative_to(package_root.parent)
        if lines > max_module:
            long_modules.append((str(rel), lines))
        for func, line, length in function_lengths(tree):
            if length > max_function:
                long_functions.append((f"{rel}:{line} {func}", length))
        graph[name] = import_edges(
            tree, name, path.name == "__init__.py", modules
        )
    return long_functions, long_modules, cycles(graph)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--package", default=str(ROOT / "ferzoo"))
    parser.add_argument("--max-function", type=int, default=80)
    parser.add_argument("--max-module", type=int, default=500)
    parser.add_argument("--quiet", action="store_true")
    args = parser.parse_args(argv)
    funcs, mods, cyc = measure(
        pathlib.Path(args.package), args.max_function, args.max_module
    )
    if not args.quiet:
        for name, length in sorted(funcs, key=lambda x: -x[1]):
            print(f"function {length:4d} lines  {name}")
        for name, lines in sorted(mods, key=lambda x: -x[1]):
            print(f"module   {lines:4d} lines  {name}")
        for component in cyc:
            print("cycle    " + " <-> ".join(component))
    print(
        f"{len(funcs)} functions over {args.max_function} lines, "
        f"{len(mods)} modules over {args.max_module} lines, "
        f"{len(cyc)} import cycles"
    )
    return 1 if funcs or mods or cyc else 0


if __name__ == "__main__":
    sys.exit(main())
