from __future__ import annotations

import pytest

from storage.templates import TemplateRegistry, load_templates
from storage.workdays import WorkCalendar


@pytest.fixture(scope="session")
def registry() -> TemplateRegistry:
    return load_templates()


@pytest.fixture(scope="session")
def calendar() -> WorkCalendar:
    return WorkCalendar()
