"""The examples users copy run as written on the bundled model: the package docstring (doctest) and every
```python block of the README."""

from __future__ import annotations

import doctest
import re
from pathlib import Path

import pytest

import anycost

README = Path(anycost.__file__).parent.parent / "README.md"


def test_package_docstring_runs():
    result = doctest.testmod(anycost, verbose=False)
    assert result.attempted >= 4 and result.failed == 0


def python_blocks() -> list[str]:
    return re.findall(r"```python\n(.*?)```", README.read_text(), flags=re.S)


@pytest.mark.skipif(not README.is_file(), reason="README.md is not beside the package (an installed copy)")
def test_readme_python_blocks_run(tmp_path, monkeypatch):
    blocks = python_blocks()
    assert blocks, "the README has no python example"
    monkeypatch.chdir(tmp_path)
    namespace: dict = {}  # one namespace, as a reader runs them: a later block may use an earlier one's names
    for code in blocks:
        exec(compile(code, str(README), "exec"), namespace)  # noqa: S102 - our own README's examples


def test_public_names_are_exported():
    for name in ("load_generator", "save_generator", "Generator", "SubnetConfig", "PreviewSession", "project",
                 "EditDirections", "default_generator", "default_model_path", "SubnetLike", "CheckpointError"):
        assert name in anycost.__all__ and hasattr(anycost, name), name
    assert isinstance(anycost.SubnetConfig.full(anycost.GeneratorArch(32)), anycost.SubnetLike)


#: Modules whose docstring examples use a generator `G` and a latent `w`: the bundled model and seed 0's w.
EXAMPLES_WITH_A_MODEL = ("anycost.editing.directions", "anycost.models.stylegan2.generator", "anycost.preview.session",
                         "anycost.search")


#: Modules whose docstring examples build what they need.
SELF_CONTAINED_EXAMPLES = ("anycost.models.i2i.generator",)


@pytest.mark.parametrize("name", SELF_CONTAINED_EXAMPLES)
def test_self_contained_docstring_examples_run(name):
    import importlib

    result = doctest.testmod(importlib.import_module(name), verbose=False)
    assert result.attempted >= 1 and result.failed == 0


@pytest.mark.parametrize("name", EXAMPLES_WITH_A_MODEL)
def test_docstring_examples_run_on_the_bundled_model(name):
    import importlib

    import torch

    module = importlib.import_module(name)
    G, _ = anycost.default_generator()
    result = doctest.testmod(module, extraglobs={"G": G, "w": G.seed_w([0]), "torch": torch}, verbose=False)
    assert result.attempted >= 1 and result.failed == 0
