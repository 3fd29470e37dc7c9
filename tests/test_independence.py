"""No test module imports another test module: shared data and helpers live in non-test modules
(``tests/kpi_district.py``, ``tests/land_district.py``, ``tests/strategies.py``, ``conftest.py``…),
so running, moving or deleting one test module never changes what another collects or runs."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

TESTS = Path(__file__).resolve().parent


def imported_test_modules(source: str) -> list[str]:
    """The test modules (``test_*``) that ``source`` imports, in any spelling."""
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            names = [base] if base else []
            # `from tests import test_x`, `from . import test_x`
            names += [f"{base}.{alias.name}" for alias in node.names]
        else:
            continue
        found += [name for name in names if any(part.startswith("test_") for part in name.split("."))]
    return found



# Spelled with a placeholder, so that the grep for such imports over the suite stays empty too.
@pytest.mark.parametrize(
    "source",
    [
        "from tests.{m} import DISTRICT",
        "import tests.{m}",
        "import tests.{m} as r",
        "from tests import {m}",
        "from .{m} import DISTRICT",
        "from . import {m}",
        "def f():\n    from tests.{m} import DISTRICT",
    ],
)
def test_the_check_sees_every_spelling(source: str) -> None:
    assert imported_test_modules(source.format(m="test_kpis"))


def test_helpers_and_libraries_are_not_test_modules() -> None:
    assert imported_test_modules("from tests.kpi_district import DISTRICT\nimport pytest\nfrom hypothesis import strategies") == []


def test_no_test_module_imports_another() -> None:
    offenders = {
        path.name: imported
        for path in sorted(TESTS.glob("*.py"))
        if (imported := imported_test_modules(path.read_text(encoding="utf-8")))
    }
    assert offenders == {}
