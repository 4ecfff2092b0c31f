"""Each process template becomes a project in the database, on every backend; and the vocabularies of the
templates and of the stored enums are one and the same."""

from __future__ import annotations

from datetime import date

import pytest
from sqlmodel import select

from domain.planner import plan_project
from storage.db import Database
from storage.models import (
    Activity,
    Deliverable,
    MemberRole,
    Phase,
    Project,
    ProjectStatus,
    Recurrence,
    RegisterKind,
    parse_member_role,
)
from storage.repo import create_project_from_plan, deliverable_headings, list_deliverables, list_members, list_phases
from storage.templates import ROLE_SYNONYMS, Register, Role, load_templates
from storage.templates import Recurrence as TemplateRecurrence
from storage.workdays import WorkCalendar

TEMPLATES = load_templates()
CALENDAR = WorkCalendar()


def test_template_vocabulary_is_the_stored_vocabulary() -> None:
    assert {r.value for r in Role} == {m.value for m in MemberRole}
    assert {r.value for r in TemplateRecurrence} == {r.value for r in Recurrence}
    assert {r.value for r in Register} <= {k.value for k in RegisterKind}
    for word, role in ROLE_SYNONYMS.items():
        assert parse_member_role(word) == MemberRole(role.value)


@pytest.mark.parametrize(
    ("typed", "role"),
    [("拓展", MemberRole.SALES), ("业务负责人", MemberRole.SALES), ("拓展/业务负责人", MemberRole.SALES),
     ("质控", MemberRole.QUALITY), (" 实施工程师 ", MemberRole.ENGINEER), ("PM", MemberRole.PM), ("厨师", None)],
)
def test_role_words_users_type(typed: str, role: MemberRole | None) -> None:
    assert parse_member_role(typed) == role


@pytest.mark.parametrize("template_name", TEMPLATES.names())
async def test_each_template_loads_into_a_project(db: Database, template_name: str) -> None:
    template = TEMPLATES.get(template_name)
    plan = plan_project(template, date(2026, 9, 28), CALENDAR)  # across National Day and its make-up days
    async with db.write() as session:
        project = await create_project_from_plan(
            session=session,
            plan=plan,
            name="智慧仓储RFID项目（一期）𠀀",
            customer="某某市第一人民医院",
            pm_user_id="pm01",
            year=2026,
            created_by="pm01",
            members=[("eng01", MemberRole.ENGINEER), ("sales01", MemberRole.SALES)],
        )
        project_id = project.id
    assert project_id is not None

    async with db.read() as session:
        phases = await list_phases(session=session, project_id=project_id)
        deliverables = await list_deliverables(session=session, project_id=project_id)
        headings = await deliverable_headings(session=session, project_ids=[project_id, project_id + 1000])
        members = await list_members(session=session, project_id=project_id)
        activities = (await session.exec(select(Activity))).all()
        stored = (await session.exec(select(Deliverable).where(Deliverable.project_id == project_id))).all()
        saved = await session.get(Project, project_id)

    assert saved is not None and saved.code == "XM-2026-001" and saved.status is ProjectStatus.DRAFT
    assert saved.template == template.name and saved.current_phase == template.phases[0].name
    assert (saved.planned_start, saved.planned_end) == (plan.start, plan.end)
    assert [p.name for p in phases] == [p.name for p in template.phases]
    assert [p.seq for p in phases] == list(range(1, len(template.phases) + 1))
    for phase, planned in zip(phases, plan.phases, strict=True):
        assert (phase.planned_start, phase.planned_end, phase.parallel_with) == (
            planned.start, planned.end, planned.parallel_with)
    by_id = {p.id: p.name for p in phases}
    assert [(by_id[d.phase_id], d.name) for d in deliverables] == [
        (phase.name, spec.name) for phase, _, spec in template.iter_deliverables()
    ]
    assert [d.seq for d in deliverables] == list(range(1, len(deliverables) + 1))
    # The light rows a file's candidates are read as say what the loaded objects say.
    assert [tuple(h) for h in headings] == [(d.id, d.project_id, d.seq, d.name, d.status, d.due_date)
                                            for d in deliverables]
    assert len(stored) == len(deliverables)
    assert len(activities) == len({(d.phase, d.activity) for d in plan.deliverables})
    for d in deliverables:
        spec = template.deliverable(d.name)
        assert d.required == spec.required and d.recurrence.value == spec.recurrence.value
        assert d.owner_role is not None and d.owner_role.value == spec.owner_role.value
        assert (d.flags or []) == [f.value for f in spec.flags]
        assert d.register_kind == (RegisterKind(spec.register_name.value) if spec.register_name else None)
        assert d.notes == (spec.notes or None)
        if spec.recurrence.value == "per_event":
            assert d.due_date is None
        else:
            assert d.due_date is not None and CALENDAR.is_workday(d.due_date), d.name
        expected_owner = {MemberRole.PM: "pm01", MemberRole.ENGINEER: "eng01", MemberRole.SALES: "sales01"}
        assert d.owner_user_id == expected_owner.get(d.owner_role)
    assert {(m.user_id, m.role) for m in members} == {
        ("pm01", MemberRole.PM), ("eng01", MemberRole.ENGINEER), ("sales01", MemberRole.SALES)}


async def test_codes_count_up_per_year(db: Database) -> None:
    template = TEMPLATES.get("软件")
    plan = plan_project(template, date(2026, 3, 2), CALENDAR)
    async with db.write() as session:
        codes = [
            (await create_project_from_plan(session=session, plan=plan, name=f"项目{i}", pm_user_id="pm", year=2026)).code
            for i in range(3)
        ]
    assert codes == ["XM-2026-001", "XM-2026-002", "XM-2026-003"]
    async with db.read() as session:
        assert len((await session.exec(select(Phase))).all()) == 3 * len(template.phases)
