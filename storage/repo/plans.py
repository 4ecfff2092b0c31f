"""A planned project (``domain.planner.plan_project``) made persistent: the project, its team, phases,
activities and deliverables, in the caller's transaction."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

from sqlmodel.ext.asyncio.session import AsyncSession

from storage.models import (
    Activity,
    Deliverable,
    MemberRole,
    Phase,
    Project,
    ProjectStatus,
    Recurrence,
    RegisterKind,
    utcnow,
)
from storage.repo.projects import add_member, create_project
from storage.templates import ProjectPlan


async def create_project_from_plan(
    *,
    session: AsyncSession,
    plan: ProjectPlan,
    name: str,
    pm_user_id: str,
    year: int,
    customer: str | None = None,
    created_by: str | None = None,
    members: Iterable[tuple[str, MemberRole]] = (),
    status: ProjectStatus = ProjectStatus.DRAFT,
    now: datetime | None = None,
) -> Project:
    """Insert the project (next code of ``year``), its team (the PM plus ``members``: (user id, role) pairs) and its
    plan. The first sequential phase is current; each deliverable's owner is the first team member holding its
    owner role, or nobody yet (``成员 添加`` fills it in later).
    """
    now = now or utcnow()
    first_phase = next(p for p in plan.phases if p.parallel_with is None)
    project = await create_project(
        session=session,
        name=name,
        template=plan.template,
        year=year,
        created_by=created_by,
        customer=customer,
        pm_user_id=pm_user_id,
        status=status,
        current_phase=first_phase.name,
        planned_start=plan.start,
        planned_end=plan.end,
        created_at=now,
        updated_at=now,
    )
    assert project.id is not None
    owners: dict[MemberRole, str] = {}
    for user_id, role in ((pm_user_id, MemberRole.PM), *members):
        await add_member(session=session, project_id=project.id, user_id=user_id, role=role, now=now)
        owners.setdefault(role, user_id)

    phases = {
        planned.name: Phase(
            project_id=project.id,
            seq=planned.order,
            name=planned.name,
            parallel_with=planned.parallel_with,
            planned_start=planned.start,
            planned_end=planned.end,
        )
        for planned in plan.phases
    }
    session.add_all(phases.values())
    await session.flush()

    activities: dict[tuple[str, str], Activity] = {}
    for planned in plan.deliverables:
        key = (planned.phase, planned.activity)
        if key not in activities:
            seq = sum(1 for phase, _ in activities if phase == planned.phase) + 1
            activities[key] = Activity(phase_id=phases[planned.phase].id, seq=seq, name=planned.activity)
    session.add_all(activities.values())
    await session.flush()

    for planned in plan.deliverables:
        role = MemberRole(planned.owner_role)
        session.add(
            Deliverable(
                project_id=project.id,
                phase_id=phases[planned.phase].id,
                activity_id=activities[(planned.phase, planned.activity)].id,
                seq=planned.order,
                name=planned.name,
                required=planned.required,
                recurrence=Recurrence(planned.recurrence),
                flags=list(planned.flags) or None,
                register_kind=RegisterKind(planned.register) if planned.register else None,
                notes=planned.notes or None,
                owner_role=role,
                owner_user_id=owners.get(role),
                due_date=planned.due,
                created_at=now,
                updated_at=now,
            )
        )
    await session.flush()
    return project


__all__ = ["create_project_from_plan"]
