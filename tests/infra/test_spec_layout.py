"""`infra/spec.py` and the `functions/*/` folders describe the same set of functions."""

from __future__ import annotations

from pathlib import Path

import pytest

from infra import spec

FUNCTIONS_DIR = Path(__file__).resolve().parents[2] / "functions"


def function_folders() -> set[str]:
    """Folders under functions/ that hold a handler, i.e. that deploy as a Lambda."""
    return {
        path.name
        for path in FUNCTIONS_DIR.iterdir()
        if path.is_dir() and path.name != "__pycache__" and (path / "handler.py").is_file()
    }


def test_function_folders_are_exactly_the_spec_functions():
    assert function_folders() == {f.name for f in spec.FUNCTIONS}


@pytest.mark.parametrize("name", [f.name for f in spec.FUNCTIONS])
def test_every_spec_function_has_a_handler_module(name):
    assert (FUNCTIONS_DIR / name / "handler.py").is_file()


def test_spec_function_names_are_unique():
    names = [f.name for f in spec.FUNCTIONS]
    assert len(names) == len(set(names))


def test_the_records_module_names_the_spec_indexes():
    from infra import spec
    from sendline.adapters.records import DUE, GSI1, LOG

    assert {(i.name, i.pk, i.sk) for i in (GSI1, DUE, LOG)} == {(i.name, i.pk, i.sk) for i in spec.TABLE.indexes}
