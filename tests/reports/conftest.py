from __future__ import annotations

import sys
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
# This folder is named "reports" like the package under test and has no __init__.py. When tests/ is on
# sys.path (tests/conftest.py puts it there) and the project is an editable install served by a meta-path
# finder, `import reports` could resolve to this folder as a namespace package; a sys.path entry holding
# the real package makes the regular package win. `python -m pytest` adds the root by itself.
for entry in (str(ROOT), str(HERE)):
    if entry not in sys.path:
        sys.path.insert(0, entry)

import sample_data  # noqa: E402


@pytest.fixture(scope="session")
def samples():
    """One ProjectReportData per template, keyed by template name."""
    return {t: sample_data.sample(t) for t in sample_data.TEMPLATES}


@pytest.fixture(params=sample_data.TEMPLATES)
def project(request):
    return sample_data.sample(request.param)
