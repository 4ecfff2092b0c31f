"""The 立项 facts of a project (合同编号, 合同金额, 项目背景, 项目目标, 项目范围): the parameters that give them at
``新建项目`` and with ``项目 设置`` (their parameters are ``handlers.projects``'), reading what was typed, and how they
are shown.

They fill the 项目立项申请 approval form and the 项目立项申请表 document. The amount is stored as a plain decimal in 元
(``1280000``): the form's money control wants a number, the document prints it as ``1,280,000.00 元``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Any

from domain.errors import UsageError
from domain.ports import CommandArgs
from reports.user_text import clip
from storage.models import Project

_AMOUNT = re.compile(r"^(\d+(?:\.\d{1,2})?)(万)?$")


@dataclass(frozen=True, slots=True)
class Fact:
    label: str  # what users type and forms print
    attribute: str  # the Project column
    max_length: int
    help: str
    example: str  # a value to show in usage examples


FACTS = (
    Fact("合同编号", "contract_no", 64, "商务合同的编号", "HT-2026-018"),
    Fact("合同金额", "contract_amount", 32, "合同金额，如 128万、1280000、¥1,280,000.00", "128万"),
    Fact("项目背景", "background", 2000, "项目背景（含空格时用引号括起来）", "原有系统无法追溯质量问题"),
    Fact("项目目标", "objectives", 2000, "项目目标", "三个车间上线MES"),
    Fact("项目范围", "scope", 2000, "项目范围", "生产执行与质量追溯"),
)
FACT_LABELS = tuple(f.label for f in FACTS)
SET_EXAMPLE = "项目 设置 合同编号:HT-2026-018 合同金额:128万"


def money(text: str | None) -> str | None:
    """``128万`` / ``1,280,000元`` / ``¥1280000.00`` -> ``1280000``; None when it is not an amount."""
    if not text:
        return None
    cleaned = re.sub(r"[\s,，¥￥]|元$|人民币", "", text.strip()).removesuffix("元")
    found = _AMOUNT.match(cleaned)
    if found is None:
        return None
    try:
        value = Decimal(found.group(1)) * (10000 if found.group(2) else 1)
    except InvalidOperation:
        return None
    return format(value.normalize(), "f")


def money_text(amount: str | None) -> str:
    """``1280000`` -> ``1,280,000.00 元``; empty when there is no amount."""
    if not amount:
        return ""
    return f"{Decimal(amount):,.2f} 元"


def read_facts(args: CommandArgs) -> dict[str, str]:
    """The facts given in ``args``, by Project attribute (the amount normalised); ``UsageError`` for an amount that
    is not one."""
    given: dict[str, str] = {}
    for fact in FACTS:
        value = (args.text(fact.label) or "").strip()
        if not value:
            continue
        if fact.attribute == "contract_amount":
            amount = money(value)
            if amount is None:
                raise UsageError(f"合同金额「{clip(value)}」不是金额，请写数字（单位元）或「万」，例如：合同金额:128万")
            value = amount
        given[fact.attribute] = value
    return given


def apply_facts(project: Project, given: dict[str, str]) -> tuple[dict[str, Any], dict[str, Any]]:
    """Set the facts on ``project``; returns (before, after) of what changed, for the audit."""
    before = {attribute: getattr(project, attribute) for attribute in given}
    for attribute, value in given.items():
        setattr(project, attribute, value)
    return before, dict(given)


def shown(project: Project, fact: Fact) -> str:
    value = getattr(project, fact.attribute) or ""
    return money_text(value) if fact.attribute == "contract_amount" else value


def set_example(labels: list[str]) -> str:
    """A ``项目 设置`` example filling the first two of ``labels`` (the facts still missing), so it never repeats a
    fact the project already has."""
    chosen = [fact for fact in FACTS if fact.label in labels][:2] or list(FACTS[:2])
    return "项目 设置 " + " ".join(f"{fact.label}:{fact.example}" for fact in chosen)


def missing_facts(project: Project) -> list[str]:
    """The labels of the facts the project does not have yet."""
    return [f.label for f in FACTS if not getattr(project, f.attribute)]


__all__ = [
    "FACTS",
    "FACT_LABELS",
    "SET_EXAMPLE",
    "Fact",
    "apply_facts",
    "missing_facts",
    "set_example",
    "money",
    "money_text",
    "read_facts",
    "shown",
]
