"""Test helpers live in conftest.py or helper modules, never imported from a `test_*.py` file.

A test module imported by another runs its module-level code twice and ties two files'
fixtures together (CONVENTIONS.md "Lessons from our own code").
"""

from __future__ import annotations

import ast
from pathlib import Path

TESTS = Path(__file__).resolve().parents[1]


def imported_test_modules(source: str) -> list[str]:
    """Return the `test_*` modules that `source` imports (by absolute or relative import)."""
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            module = node.module or ""
            # `from tests.x import test_y` imports the module test_y too.
            names = [module] + [f"{module}.{alias.name}" for alias in node.names]
        else:
            continue
        found += [name for name in names if name.rsplit(".", 1)[-1].startswith("test_")]
    return found


def test_the_scan_sees_imports_of_test_modules() -> None:
    source = (
        "from tests.e2e.test_a import helper\n"
        "import tests.unit.test_b\n"
        "from tests.unit import test_c\n"
        "from .test_d import other\n"
        "from tests.e2e.scan_support import findings\n"
    )
    assert imported_test_modules(source) == [
        "tests.e2e.test_a",
        "tests.unit.test_b",
        "tests.unit.test_c",
        "test_d",
    ]


def test_no_file_under_tests_imports_a_test_module() -> None:
    offenders = {
        str(path.relative_to(TESTS)): found
        for path in sorted(TESTS.rglob("*.py"))
        if (found := imported_test_modules(path.read_text(encoding="utf-8")))
    }
    assert offenders == {}
