import pathlib

from tests.test_case import REPO
from tests.test_case import TestCase
from tests.test_case import load_script


def _structure():
    return load_script("structure.py")


class StructureTest(TestCase):
    def test_package_stays_within_the_size_limits_and_acyclic(self):
        funcs, mods, cycles = _structure().measure(REPO / "ferzoo", 80, 500)
        self.assertEqual(funcs, [], "functions over 80 lines")
        self.assertEqual(mods, [], "modules over 500 lines")
        self.assertEqual(cycles, [], "import cycles")

    def test_measure_sees_a_long_function_and_a_cycle(self):
        root = pathlib.Path(self.tmp_dir()) / "pkg"
        root.mkdir()
        (root / "__init__.py").write_text("")
        body = "\n".join(f"    x{i} = {i}" for i in range(81))
        (root / "a.py").write_text(
            f'def f():\n    """Doc."""\n{body}\n\n\ndef g():\n'
            "    from pkg import b  # noqa\n"
        )
        (root / "b.py").write_text("from pkg import a  # noqa\n")
        funcs, mods, cycles = _structure().measure(root, 80, 500)
        # The def line and 81 statements; the docstring does not count.
        self.assertEqual([(n.split()[-1], k) for n, k in funcs], [("f", 82)])
        self.assertEqual(cycles, [["pkg.a", "pkg.b"]])
