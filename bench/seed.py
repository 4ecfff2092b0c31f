"""Bench data: an emulator world (people, groups, the bot) and a database seeded to match it.

The database gets its schema from the migrations (``storage.migrations.upgrade``) and its rows from bulk inserts
(SQLAlchemy Core ``executemany``, explicit primary keys), so 10,000 projects take seconds, not the hours the chat
commands would. Projects follow the software template (``storage/templates/software.toml``: 5 phases, 42
deliverables), started at spread-out dates up to 150 days ago, so each has a current phase, submitted and overdue
deliverables, a week of 实施日志, open and closed issues, a risk, next week's plan, an approval and a few audit rows.

Databases: ``sqlite`` (a file under the work directory) or ``postgresql`` (``dingpm_bench*`` databases on the local
server, recreated). ``fresh_copy`` clones a seeded database for a run that must not see another run's rows.
"""

from __future__ import annotations

import asyncio
import random
import shutil
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta, timezone
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from sandbox.ids import conversation_id as sandbox_conversation_id
from sandbox.world import World

PG_SERVER = "postgresql+asyncpg://postgres@127.0.0.1:5432"
CORP_ID = "dingbenchcorp0001"
APP_CLIENT_ID = "dingbenchpm0000001"
APP_SECRET = "bench-secret-0f9e8d7c6b5a4f3e2d1c0b9a8f7e6d5c4b3a2f1e"
ROBOT_NAME = "项目管家"
LEADERS = ("leader1", "leader2")
TZ = ZoneInfo("Asia/Shanghai")

SURNAMES = "王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗郑梁谢宋唐许韩冯邓曹彭曾肖田董袁潘于蒋蔡余杜叶程苏魏吕丁任沈"
GIVEN = ["建国", "明", "磊", "静", "强", "敏", "涛", "丽", "伟", "芳", "勇", "艳", "杰", "娟", "军", "霞", "平", "刚",
         "桂英", "文", "华", "红", "鹏", "燕", "超", "玲", "浩", "婷", "宇", "欣"]
CUSTOMERS = ["华东某制造集团", "某某物流", "某市人民医院", "某某汽车零部件", "某省电力公司", "某某食品", "某市水务集团",
             "某某化工", "某某电子", "某市第一中学"]
LOG_LINES = ["完成生产管理模块需求调研访谈", "完成3号楼AP安装调试，培训操作员12人", "完成接口联调第一轮测试",
             "整理质量模块需求纪要并发客户确认", "完成服务器部署与数据库初始化", "完成报表模板评审"]
ISSUE_LINES = ["车间网络不通导致终端无法登录", "客户需确认物料编码规则", "打印机驱动与系统不兼容",
               "历史数据导入格式不一致", "登录页面在IE11下空白"]


def person_name(index: int) -> str:
    surname = SURNAMES[index % len(SURNAMES)]
    given = GIVEN[(index // len(SURNAMES)) % len(GIVEN)]
    round_ = index // (len(SURNAMES) * len(GIVEN))
    return f"{surname}{given}" + (str(round_ + 1) if round_ else "")


@dataclass(frozen=True)
class BenchProject:
    """One seeded project and the people and groups it uses."""

    number: int  # 1-based
    code: str
    pm: str
    engineers: tuple[str, str]
    sales: str
    client: str
    internal_cid: str | None
    client_cid: str | None

    @property
    def team(self) -> tuple[str, ...]:
        """Who may post 日志 / 问题 / 提交 in the internal group."""
        return (self.pm, *self.engineers)


@dataclass
class BenchWorld:
    world: World
    projects: list[BenchProject]
    names: dict[str, str] = field(default_factory=dict)  # user id -> name


def project_code(number: int) -> str:
    return f"XM-2026-{number:05d}"


def build_world(n_projects: int, *, internal_groups: bool = True, client_groups: bool = False) -> BenchWorld:
    """People and groups for ``n_projects``: a PM runs ~5 projects, an engineer works on ~4, each project has its
    own client contact, an internal group (PM, engineers, sales, the bot) and/or a client group (PM, first engineer,
    client contact, the bot)."""
    n_pm = max(1, n_projects // 5)
    n_eng = max(2, n_projects // 2)
    n_sales = max(1, n_projects // 10)
    users: list[dict[str, Any]] = []
    names: dict[str, str] = {}
    counter = 0

    def person(user_id: str, title: str, dept: int, **extra: Any) -> None:
        nonlocal counter
        names[user_id] = person_name(counter)
        counter += 1
        users.append({"user_id": user_id, "name": names[user_id], "title": title, "departments": [dept], **extra})

    for i in range(n_pm):
        person(f"pm{i}", "项目经理", 2)
    for i in range(n_eng):
        person(f"eng{i}", "实施工程师", 2)
    for i in range(n_sales):
        person(f"sales{i}", "销售经理", 3)
    for leader in LEADERS:
        person(leader, "交付中心总监", 5, admin=True)
    rng = random.Random(7)
    projects: list[BenchProject] = []
    groups: list[dict[str, Any]] = []
    for number in range(1, n_projects + 1):
        client = f"client{number}"
        names[client] = person_name(counter) + "（客户）"
        counter += 1
        users.append({"user_id": client, "name": names[client], "external": True, "corp_id": "dingclientcorp",
                      "corp_name": CUSTOMERS[number % len(CUSTOMERS)]})
        eng = rng.sample(range(n_eng), 2)
        project = BenchProject(
            number=number, code=project_code(number), pm=f"pm{(number - 1) % n_pm}",
            engineers=(f"eng{eng[0]}", f"eng{eng[1]}"), sales=f"sales{number % n_sales}", client=client,
            internal_cid=sandbox_conversation_id("group", CORP_ID, f"【项目{number}】内部群") if internal_groups else None,
            client_cid=sandbox_conversation_id("group", CORP_ID, f"【项目{number}】客户沟通群") if client_groups else None,
        )
        projects.append(project)
        if project.internal_cid:
            groups.append({"conversation_id": project.internal_cid, "title": f"【项目{number}】内部群",
                           "owner": project.pm, "members": [*project.team, project.sales], "bots": [APP_CLIENT_ID]})
        if project.client_cid:
            groups.append({"conversation_id": project.client_cid, "title": f"【项目{number}】客户沟通群",
                           "owner": project.sales, "members": [project.pm, project.engineers[0], project.sales, client],
                           "bots": [APP_CLIENT_ID]})
    raw = {
        "corp": {"corp_id": CORP_ID, "name": "示例数智科技有限公司"},
        "departments": [{"id": 1, "name": "示例数智科技"}, {"id": 2, "name": "交付中心", "parent": 1},
                        {"id": 3, "name": "销售部", "parent": 1}, {"id": 5, "name": "公司管理层", "parent": 1}],
        "users": users,
        "apps": [{"name": ROBOT_NAME, "client_id": APP_CLIENT_ID, "client_secret": APP_SECRET, "agent_id": 3100000001,
                  "robot_name": ROBOT_NAME, "default": True}],
        "groups": groups,
    }
    return BenchWorld(World.from_dict(raw), projects, names)


# ---- databases -----------------------------------------------------------------------------------------------------


def database_url(kind: str, name: str, workdir: Path) -> str:
    if kind == "sqlite":
        return f"sqlite+aiosqlite:///{workdir / (name + '.db')}"
    if kind == "postgresql":
        return f"{PG_SERVER}/{name}"
    raise ValueError(f"unknown database kind {kind!r} (sqlite or postgresql)")


def _sqlite_path(url: str) -> Path:
    return Path(url.split(":///", 1)[1])


async def _pg_admin(*statements: str) -> None:
    import asyncpg

    conn = await asyncpg.connect(user="postgres", host="127.0.0.1", port=5432, database="postgres")
    try:
        for statement in statements:
            await conn.execute(statement)
    finally:
        await conn.close()


async def recreate(url: str) -> None:
    """An empty database at ``url`` (dropped first if it exists)."""
    if url.startswith("sqlite"):
        path = _sqlite_path(url)
        for suffix in ("", "-wal", "-shm", ".migration-lock"):
            Path(str(path) + suffix).unlink(missing_ok=True)
        path.parent.mkdir(parents=True, exist_ok=True)
        return
    name = url.rsplit("/", 1)[1]
    await _pg_admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)', f'CREATE DATABASE "{name}"')


async def fresh_copy(source_url: str, target_name: str) -> str:
    """A copy of a seeded database (file copy on SQLite, ``CREATE DATABASE … TEMPLATE`` on PostgreSQL)."""
    if source_url.startswith("sqlite"):
        source = _sqlite_path(source_url)
        target = source.with_name(target_name + ".db")
        for suffix in ("-wal", "-shm"):
            Path(str(target) + suffix).unlink(missing_ok=True)
        await asyncio.to_thread(shutil.copyfile, source, target)
        return f"sqlite+aiosqlite:///{target}"
    name = source_url.rsplit("/", 1)[1]
    await _pg_admin(f'DROP DATABASE IF EXISTS "{target_name}" WITH (FORCE)',
                    f'CREATE DATABASE "{target_name}" TEMPLATE "{name}"')
    return f"{PG_SERVER}/{target_name}"


async def drop(url: str) -> None:
    if url.startswith("sqlite"):
        path = _sqlite_path(url)
        for suffix in ("", "-wal", "-shm", ".migration-lock"):
            Path(str(path) + suffix).unlink(missing_ok=True)
        return
    await _pg_admin(f'DROP DATABASE IF EXISTS "{url.rsplit("/", 1)[1]}" WITH (FORCE)')


# ---- rows ----------------------------------------------------------------------------------------------------------


def _utc(day: date, hour: int = 10) -> datetime:
    """A Shanghai wall-clock time on ``day`` as the naive UTC the database stores."""
    return datetime.combine(day, time(hour)).replace(tzinfo=TZ).astimezone(timezone.utc).replace(tzinfo=None)


@dataclass
class SeedOptions:
    today: date
    all_active: bool = False  # every project 进行中 (the weekly push); else a realistic mix of statuses
    versions: bool = True  # a deliverable_versions row per submitted deliverable
    registers: bool = True
    seed: int = 11


@dataclass
class _Rows:
    tables: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    ids: dict[str, int] = field(default_factory=dict)

    def add(self, table: str, row: dict[str, Any]) -> int:
        new_id = self.ids.get(table, 0) + 1
        self.ids[table] = new_id
        row["id"] = new_id
        self.tables.setdefault(table, []).append(row)
        return new_id


def _plan_factory() -> Any:
    """``plan_for(start)``: the software template planned from ``start`` (cached: a few hundred distinct starts)."""
    from domain.planner import plan_project
    from storage.templates import load_templates
    from storage.workdays import WorkCalendar

    template = load_templates(None).get("软件")
    calendar = WorkCalendar()
    cache: dict[date, Any] = {}

    def plan_for(start: date) -> Any:
        if start not in cache:
            cache[start] = plan_project(template, start, calendar, None)
        return cache[start]

    return plan_for


def build_rows(world: BenchWorld, options: SeedOptions) -> _Rows:
    """Every row of the seeded projects, as dicts per table (ids assigned here)."""
    from storage.models import (
        ApprovalKind, ApprovalResult, ApprovalStatus, DeliverableStatus, MemberRole, ProjectStatus, Recurrence,
        RegisterKind,
    )

    rng = random.Random(options.seed)
    today = options.today
    now = _utc(today, 8)
    monday = today - timedelta(days=today.weekday())
    plan_for = _plan_factory()
    rows = _Rows()
    for user_id, name in world.names.items():
        rows.add("users", {"user_id": user_id, "name": name, "last_project_id": None, "created_at": now,
                           "updated_at": now})
    for bp in world.projects:
        start = today - timedelta(days=rng.randint(7, 150))
        plan = plan_for(start)
        current = next((p for p in plan.phases if p.parallel_with is None and p.start <= today <= p.end), None)
        current = current or [p for p in plan.phases if p.parallel_with is None][-1]
        if options.all_active:
            status = ProjectStatus.IN_PROGRESS
        else:
            status = rng.choices([ProjectStatus.IN_PROGRESS, ProjectStatus.APPROVED, ProjectStatus.PAUSED,
                                  ProjectStatus.ACCEPTED], weights=[85, 5, 5, 5])[0]
        created = _utc(start - timedelta(days=3))
        project_id = rows.add("projects", {
            "code": bp.code, "name": f"{CUSTOMERS[bp.number % len(CUSTOMERS)]}数字化项目{bp.number}",
            "customer": CUSTOMERS[bp.number % len(CUSTOMERS)], "template": plan.template, "status": status,
            "current_phase": current.name, "pm_user_id": bp.pm, "planned_start": plan.start,
            "planned_end": plan.end, "actual_start": plan.start, "actual_end": None,
            "internal_conversation_id": bp.internal_cid, "client_conversation_id": bp.client_cid,
            "paused_at": now - timedelta(days=3) if status == ProjectStatus.PAUSED else None,
            "paused_workdays": 0, "created_by": bp.pm, "created_at": created, "updated_at": now,
        })
        team = [(bp.pm, MemberRole.PM), (bp.engineers[0], MemberRole.ENGINEER), (bp.engineers[1], MemberRole.ENGINEER),
                (bp.sales, MemberRole.SALES), (bp.client, MemberRole.CLIENT)]
        owners: dict[str, str] = {}
        for user_id, role in team:
            rows.add("project_members", {"project_id": project_id, "user_id": user_id, "role": role,
                                         "created_at": created})
            owners.setdefault(str(role), user_id)
        phase_ids: dict[str, int] = {}
        for planned in plan.phases:
            passed = planned.end < today
            phase_ids[planned.name] = rows.add("phases", {
                "project_id": project_id, "seq": planned.order, "name": planned.name,
                "parallel_with": planned.parallel_with, "planned_start": planned.start, "planned_end": planned.end,
                "actual_start": planned.start if planned.start <= today else None,
                "actual_end": planned.end if passed else None, "gate_passed_by": bp.pm if passed else None,
                "gate_passed_at": _utc(planned.end, 18) if passed else None,
            })
        for planned in plan.deliverables:
            due = planned.due
            state = DeliverableStatus.PENDING
            submitted_at = None
            if due is not None and due < today:
                state = rng.choices([DeliverableStatus.SUBMITTED, DeliverableStatus.WAIVED, DeliverableStatus.PENDING],
                                    weights=[86, 4, 10])[0]
            elif due is not None and rng.random() < 0.05:
                state = DeliverableStatus.SUBMITTED
            if state == DeliverableStatus.SUBMITTED:
                submitted_at = _utc(min(today, (due or today) + timedelta(days=rng.randint(-3, 2))), 15)
            owner = owners.get(planned.owner_role)
            deliverable_id = rows.add("deliverables", {
                "project_id": project_id, "phase_id": phase_ids[planned.phase], "activity_id": None,
                "seq": planned.order, "name": planned.name, "required": planned.required,
                "recurrence": Recurrence(planned.recurrence), "flags": list(planned.flags) or None,
                "register_kind": RegisterKind(planned.register) if planned.register else None,
                "notes": planned.notes or None, "period_key": None, "owner_role": MemberRole(planned.owner_role),
                "owner_user_id": owner, "due_date": due, "status": state,
                "waiver_reason": "客户不需要" if state == DeliverableStatus.WAIVED else None,
                "waived_by": bp.pm if state == DeliverableStatus.WAIVED else None,
                "submitted_at": submitted_at, "created_at": created, "updated_at": submitted_at or created,
            })
            if options.versions and submitted_at is not None:
                rows.add("deliverable_versions", {
                    "deliverable_id": deliverable_id, "version": 1, "file_path": None, "sha256": None, "size": None,
                    "original_name": None, "link": f"https://space.dingtalk.com/s/{bp.code}-{planned.order}",
                    "submitted_by": owner or bp.pm, "submitted_at": submitted_at, "note": None,
                })
        if options.registers:
            _register_rows(rows, rng, bp, project_id, today, monday)
        rows.add("approvals", {
            "project_id": project_id, "kind": ApprovalKind.INITIATION, "process_instance_id": f"proc-{bp.code}-1",
            "process_code": "PROC-BENCH-INIT", "status": ApprovalStatus.COMPLETED, "result": ApprovalResult.AGREE,
            "requester_user_id": bp.pm, "form_values": None, "remarks": None, "applied_event": "bench",
            "created_at": created, "updated_at": created, "decided_at": created + timedelta(hours=5),
        })
        if rng.random() < 0.05:
            rows.add("approvals", {
                "project_id": project_id, "kind": ApprovalKind.SCHEDULE_CHANGE,
                "process_instance_id": f"proc-{bp.code}-2", "process_code": "PROC-BENCH-SCHED",
                "status": ApprovalStatus.RUNNING, "result": None, "requester_user_id": bp.pm, "form_values": None,
                "remarks": None, "applied_event": None, "created_at": now - timedelta(days=1),
                "updated_at": now - timedelta(days=1), "decided_at": None,
            })
        for action, day in (("project.create", start - timedelta(days=3)), ("project.bind", start - timedelta(days=2)),
                            ("project.initiate", start)):
            rows.add("audit_log", {"actor_user_id": bp.pm, "action": action, "project_id": project_id,
                                   "entity": "project", "entity_id": str(project_id), "before": None,
                                   "after": {"code": bp.code}, "at": _utc(day)})
    return rows


def _register_rows(rows: _Rows, rng: random.Random, bp: BenchProject, project_id: int, today: date,
                   monday: date) -> None:
    from storage.models import Level, RegisterKind, RegisterStatus, RiskResponse

    seqs: dict[RegisterKind, int] = {}

    def entry(kind: RegisterKind, title: str, status: RegisterStatus, created: datetime, **values: Any) -> None:
        seqs[kind] = seqs.get(kind, 0) + 1
        row = {"project_id": project_id, "kind": kind, "seq": seqs[kind], "title": title, "content": title,
               "owner_user_id": values.pop("owner", bp.engineers[0]), "status": status, "resolution": None,
               "due_date": None, "probability": None, "impact": None, "response": None, "meeting_type": None,
               "version": None, "extra": None, "created_by": bp.pm, "created_at": created, "updated_at": created,
               "closed_at": None}
        row.update(values)
        rows.add("register_entries", row)

    days_this_week = max(1, min(5, (today - monday).days + 1))
    for back in range(10, 0, -1):  # two older weeks of logs
        entry(RegisterKind.LOG, rng.choice(LOG_LINES), RegisterStatus.RECORDED, _utc(monday - timedelta(days=back)))
    for day in range(days_this_week):
        entry(RegisterKind.LOG, rng.choice(LOG_LINES), RegisterStatus.RECORDED, _utc(monday + timedelta(days=day)),
              owner=bp.engineers[day % 2])
    entry(RegisterKind.ISSUE, ISSUE_LINES[0], RegisterStatus.CLOSED, _utc(monday - timedelta(days=9)),
          closed_at=_utc(monday + timedelta(days=min(1, days_this_week - 1))), resolution="已更换交换机端口")
    entry(RegisterKind.ISSUE, ISSUE_LINES[1], RegisterStatus.OPEN, _utc(monday), extra={"needs_client": True})
    entry(RegisterKind.ISSUE, rng.choice(ISSUE_LINES[2:]), RegisterStatus.IN_PROGRESS, _utc(monday - timedelta(days=4)),
          due_date=today + timedelta(days=3))
    high = rng.random() < 0.3
    entry(RegisterKind.RISK, "关键用户参与度不足", RegisterStatus.OPEN, _utc(monday - timedelta(days=20)),
          probability=Level.HIGH if high else Level.MEDIUM, impact=Level.HIGH if high else Level.LOW,
          response=RiskResponse.MITIGATE, extra={"措施": "请客户指定专人"})
    entry(RegisterKind.REQUIREMENT, "报表增加按科室导出", RegisterStatus.PENDING, _utc(monday - timedelta(days=6)),
          due_date=today + timedelta(days=20))
    entry(RegisterKind.PLAN, "完成数据接口联调，组织操作员培训", RegisterStatus.PENDING,
          _utc(monday + timedelta(days=days_this_week - 1)), due_date=monday + timedelta(days=11))
    entry(RegisterKind.MEETING, "周会：确认接口联调延期一周", RegisterStatus.RECORDED, _utc(monday),
          meeting_type="周会")


# Insert order: parents before children.
TABLE_ORDER = ("users", "projects", "project_members", "phases", "deliverables", "deliverable_versions",
               "register_entries", "approvals", "audit_log")


async def seed_database(url: str, world: BenchWorld, options: SeedOptions) -> dict[str, int]:
    """Recreate the database at ``url``, migrate it, and bulk-insert the world's projects. Returns row counts."""
    from sqlalchemy import text

    from storage.db import create_engine
    from storage.migrations import upgrade
    from storage.models import metadata

    await recreate(url)
    await upgrade(url)
    rows = await asyncio.to_thread(build_rows, world, options)
    engine = create_engine(url, sqlite_foreign_keys=False)
    try:
        async with engine.begin() as connection:
            for name in TABLE_ORDER:
                table = metadata.tables[name]
                batch = rows.tables.get(name, [])
                for start in range(0, len(batch), 5000):
                    await connection.execute(table.insert(), batch[start:start + 5000])
            if url.startswith("postgresql"):
                for name in TABLE_ORDER:
                    await connection.execute(text(
                        f"SELECT setval(pg_get_serial_sequence('{name}', 'id'), "
                        f"GREATEST((SELECT COALESCE(MAX(id), 0) FROM {name}), 1))"))
                # Production tables have statistics (autovacuum); a bulk load has none until it runs.
                await connection.exec_driver_sql("ANALYZE")
    finally:  # closing the last SQLite connection checkpoints the WAL into the file (fresh_copy copies the file)
        await engine.dispose()
    return {name: len(rows.tables.get(name, [])) for name in TABLE_ORDER}


def group_ids(projects: Iterable[BenchProject], kind: str) -> list[str]:
    return [cid for p in projects if (cid := (p.internal_cid if kind == "internal" else p.client_cid))]


__all__: Sequence[str] = ("BenchProject", "BenchWorld", "SeedOptions", "build_world", "database_url", "drop",
                          "fresh_copy", "recreate", "seed_database")
