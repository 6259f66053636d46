"""Run every `Example:` in ferzoo's docstrings."""

import doctest
import importlib
import pkgutil

import numpy as np
import pytest

import ferzoo

SKIP = {"ferzoo.cli"}


def _modules():
    for info in pkgutil.walk_packages(ferzoo.__path__, "ferzoo."):
        if not any(info.name.startswith(s) for s in SKIP):
            yield info.name


@pytest.mark.parametrize("name", sorted(_modules()))
def test_docstring_examples(name):
    module = importlib.import_module(name)
    finder = doctest.DocTestFinder(exclude_empty=True)
    runner = doctest.DocTestRunner(optionflags=doctest.ELLIPSIS)
    for test in finder.find(module, globs={"ferzoo": ferzoo, "np": np}):
        if test.examples:
            runner.run(test)
    result = runner.summarize(verbose=False)
    assert result.failed == 0, f"{result.failed} docstring examples failed"
