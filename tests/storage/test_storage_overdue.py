"""The overdue query: pending deliverables past due, in running projects only."""

from __future__ import annotations

from datetime import date

from storage.db import Database
from storage.models import Deliverable, DeliverableStatus, Project, ProjectStatus
from storage.repo import overdue_deliverables

TODAY = date(2026, 3, 10)


async def _setup(db: Database) -> dict[str, int]:
    ids: dict[str, int] = {}
    async with db.write() as session:
        projects = {
            status: Project(code=f"XM-2026-{n:03d}", name=f"项目{n}", template="软件实施", status=status)
            for n, status in enumerate(ProjectStatus, start=1)
        }
        session.add_all(projects.values())
        await session.flush()
        for status, project in projects.items():
            ids[status.value] = project.id
        running = projects[ProjectStatus.IN_PROGRESS]
        approved = projects[ProjectStatus.APPROVED]

        def deliverable(project: Project, name: str, due: date | None, status: DeliverableStatus) -> Deliverable:
            return Deliverable(project_id=project.id, name=name, due_date=due, status=status)

        session.add_all(
            [
                deliverable(running, "需求调研报告", date(2026, 3, 1), DeliverableStatus.PENDING),  # overdue
                deliverable(approved, "项目立项申请表", date(2026, 3, 9), DeliverableStatus.PENDING),  # overdue
                deliverable(running, "项目实施计划表", TODAY, DeliverableStatus.PENDING),  # due today: not yet
                deliverable(running, "上线确认单", date(2026, 4, 1), DeliverableStatus.PENDING),
                deliverable(running, "接口说明文档", None, DeliverableStatus.PENDING),  # no due date
                deliverable(running, "商务合同", date(2026, 2, 1), DeliverableStatus.SUBMITTED),
                deliverable(running, "纸质资料存档", date(2026, 2, 1), DeliverableStatus.WAIVED),
            ]
        )
        for status, project in projects.items():
            if status not in (ProjectStatus.IN_PROGRESS, ProjectStatus.APPROVED):
                session.add(deliverable(project, f"{status.value}的文件", date(2026, 1, 1), DeliverableStatus.PENDING))
    return ids


async def test_overdue_rows_and_exclusions(db: Database) -> None:
    ids = await _setup(db)
    async with db.read() as session:
        rows = await overdue_deliverables(session=session, today=TODAY)
    assert [(d.name, p.status) for d, p in rows] == [
        ("需求调研报告", ProjectStatus.IN_PROGRESS),
        ("项目立项申请表", ProjectStatus.APPROVED),
    ]
    assert all(d.project_id == p.id for d, p in rows)
    async with db.read() as session:
        only_approved = await overdue_deliverables(session=session, today=TODAY, project_ids=[ids["已立项"]])
        none = await overdue_deliverables(session=session, today=TODAY, project_ids=[])
    assert [d.name for d, _ in only_approved] == ["项目立项申请表"] and none == []


async def test_the_query_uses_the_status_due_date_index_on_sqlite(sqlite_db: Database) -> None:
    from sqlalchemy import text

    async with sqlite_db.read() as session:
        plan = (
            await session.exec(
                text(
                    "EXPLAIN QUERY PLAN SELECT * FROM deliverables JOIN projects ON projects.id = project_id "
                    "WHERE deliverables.status = '待提交' AND due_date < '2026-03-10'"
                )
            )
        ).all()
    assert any("ix_deliverables_status_due_date" in str(row) for row in plan), plan
