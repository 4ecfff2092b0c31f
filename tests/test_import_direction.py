"""The layers import one way: features (handlers/, web/) -> domain/ -> storage/, reports/.

Read from the source (every import statement, at any depth), so a late import inside a function counts as much as
one at the top: a cycle dodged by importing late is still a cycle.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PROJECT_PACKAGES = ("bot", "domain", "handlers", "reports", "sandbox", "storage", "web")

# handlers/ modules every feature may use; a feature module never imports another feature module.
SHARED_HANDLER_HELPERS = frozenset({"handlers._common", "handlers._project", "handlers._files"})
# The one module that lists every feature (what ``App`` is built from): it imports them all, and nothing imports it
# from handlers/.
FEATURE_LIST = "handlers.features"

# What the domain still takes from the kernel, named so it can only shrink: the outbox's write side (``enqueue`` and
# its targets run in the caller's unit of work and encode DingTalk messages).
DOMAIN_KERNEL_IMPORTS = frozenset({"bot.outbox"})


def _modules(package: str) -> list[Path]:
    return sorted(p for p in (ROOT / package).rglob("*.py") if "migrations" not in p.parts or package != "storage")


def _name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _imports(path: Path) -> list[tuple[int, str, bool]]:
    """(line, imported module, whether the import sits inside a function) for each project import in ``path``."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    found: list[tuple[int, str, bool]] = []

    def visit(node: ast.AST, in_function: bool) -> None:
        for child in ast.iter_child_nodes(node):
            nested = in_function or isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda))
            if isinstance(child, ast.Import):
                found.extend((child.lineno, alias.name, in_function) for alias in child.names)
            elif isinstance(child, ast.ImportFrom) and child.level == 0 and child.module:
                found.append((child.lineno, child.module, in_function))
                # ``from domain import replies`` imports the module domain.replies
                found.extend((child.lineno, f"{child.module}.{alias.name}", in_function) for alias in child.names
                             if (ROOT / child.module.replace(".", "/") / f"{alias.name}.py").exists())
            visit(child, nested)

    visit(tree, False)
    return [(line, module, late) for line, module, late in found if module.split(".")[0] in PROJECT_PACKAGES]


def _violations(package: str, forbidden: tuple[str, ...], allowed: frozenset[str] = frozenset()) -> list[str]:
    bad = []
    for path in _modules(package):
        for line, module, _ in _imports(path):
            if module.split(".")[0] in forbidden and not any(module == a or module.startswith(f"{a}.") for a in allowed):
                bad.append(f"{path.relative_to(ROOT)}:{line} imports {module}")
    return bad


def test_domain_never_imports_features_or_the_kernel() -> None:
    assert _violations("domain", ("bot", "handlers", "web", "sandbox"), DOMAIN_KERNEL_IMPORTS) == []


@pytest.mark.parametrize("package", ["storage", "reports"])
def test_storage_and_reports_import_no_layer_above_them(package: str) -> None:
    assert _violations(package, ("bot", "handlers", "domain", "web", "sandbox")) == []


def test_feature_modules_import_no_other_feature_module() -> None:
    bad = []
    for path in _modules("handlers"):
        me = _name(path)
        if me == FEATURE_LIST:
            continue
        for line, module, _ in _imports(path):
            if module.startswith("handlers.") and module != me and module not in SHARED_HANDLER_HELPERS:
                bad.append(f"{path.relative_to(ROOT)}:{line} imports {module}")
    assert bad == []


def test_shared_helpers_import_no_feature_module() -> None:
    bad = []
    for path in _modules("handlers"):
        if _name(path) not in SHARED_HANDLER_HELPERS:
            continue
        bad += [f"{path.relative_to(ROOT)}:{line} imports {module}" for line, module, _ in _imports(path)
                if module.startswith("handlers.") and module not in SHARED_HANDLER_HELPERS]
    assert bad == []


@pytest.mark.parametrize("package", ["domain", "handlers", "web"])
def test_no_late_imports_of_project_modules(package: str) -> None:
    """Late imports of the project's own modules are how cycles hide; heavy third-party libraries may still load late
    (matplotlib, python-docx, openpyxl are imported by the render threads, not by our importers)."""
    late = [f"{path.relative_to(ROOT)}:{line} imports {module}"
            for path in _modules(package) for line, module, is_late in _imports(path) if is_late]
    assert late == []


def test_the_rules_see_what_they_check() -> None:
    """The checks read real imports: the domain does use storage, and a feature module does use the domain."""
    assert any(m.startswith("storage") for _, m, _ in _imports(ROOT / "domain" / "approval_flow.py"))
    assert any(m == "domain.approval_flow" for _, m, _ in _imports(ROOT / "handlers" / "approvals.py"))
    assert any(late for _, _, late in _imports(ROOT / "bot" / "cli.py"))  # the CLI loads its commands late
