"""The contacts walk: the directory filled from DingTalk's contacts, departments and group members.

``directory_sync`` runs every day (``directory.sync_time``, 03:00) and at start when the day's walk has not run,
on the scheduler's leader only (one process of several), claimed by its run key like every scheduled job. It walks

1. the departments from the root (``listsub``, one call per department),
2. each department's employees, a page at a time (``user/list``): new people, new names, titles, departments,
3. the members of every bound client group (``sceneGroups/members/batchQuery``): people of other organizations
   become the project's 客户联系人 (unless the PM removed them), and the group is marked as having outsiders,

then marks the employees the walk did not meet as having left (kept, with their names, for history).

Every call goes through the client's per-API pacing, below DingTalk's per-app limit. After each call the page it
fetched and the walk's position (a checkpoint: departments still to list, the department and cursor of the users
phase, the client groups left) are stored in one transaction, so a fault mid-walk (a throttle, a 5xx that outlived
the client's retries, a restart) fails the run and the run taken over later (the scheduler's bounded attempts)
resumes at the page it stopped at, never starting over and never marking people as departed from half a walk.

``绑定`` requests ``group_members`` for the group it binds: step 3 for that one group, right away (an internal group
found to hold outsiders is then treated as the client conversation it is).
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from sqlmodel.ext.asyncio.session import AsyncSession

from bot.dingtalk.contacts import Contacts, EmployeePage, GroupMembers, UnknownDepartment
from bot.dingtalk.errors import InvalidRequest
from bot.feature import Feature
from bot.jobs import JobRegistry, JobRunContext, daily
from bot.people import leave_internal_group
from domain.job_names import GROUP_MEMBERS_JOB
from storage.models import Project, ProjectStatus
from storage.repo import list_projects
from storage.repo.directory import (
    delete_checkpoints_except,
    ensure_client_contact,
    learn_external,
    load_checkpoint,
    mark_departed,
    note_external_members,
    save_checkpoint,
    store_departments,
    store_employees,
)

jobs = JobRegistry()

SYNC_JOB = "directory_sync"
CHECKPOINT_PREFIX = "directory:"
ROOT_DEPARTMENT = 1
# Projects whose client groups are walked: every one not closed (a paused project's client still talks to us).
_WALKED_STATUSES = tuple(s for s in ProjectStatus if s != ProjectStatus.CLOSED)


def _sync_time(config: Any) -> Any:
    return config.directory.sync_time


@jobs.scheduled(SYNC_JOB, daily(at=_sync_time), misfire=timedelta(days=1))
async def directory_sync_job(run: JobRunContext) -> None:
    """One day's walk (see the module docstring); resumes from its checkpoint when run again."""
    if not run.config.directory.sync:
        run.log.info("the contacts walk is switched off (directory.sync = false)")
        return
    walk = DirectoryWalk(run)
    await walk.run()


@jobs.on_demand(GROUP_MEMBERS_JOB, timeout=300, doing="读取群成员")
async def group_members_job(run: JobRunContext) -> None:
    """The members of a group just bound (``run.params``: ``conversation_id``, and ``project_id`` for a client group):
    outsiders in a client group become its project's 客户联系人 at once; outsiders in a group bound as an internal
    group make it a conversation with external members, where nothing internal is answered."""
    project = None
    if run.params.get("project_id") is not None:
        async with run.database.read() as session:
            project = await session.get(Project, run.params["project_id"])
    await read_group_members(run, Contacts(run.services.dingtalk), run.params["conversation_id"], project)


class DirectoryWalk:
    """The walk of one day, driven by its checkpoint."""

    def __init__(self, run: JobRunContext) -> None:
        self.job = run
        self.contacts = Contacts(run.services.dingtalk)
        self.name = f"{CHECKPOINT_PREFIX}{run.period_key}"
        self.state: dict[str, Any] = {}

    async def _save(self, session: AsyncSession) -> None:
        await save_checkpoint(session=session, name=self.name, state=dict(self.state))

    async def run(self) -> None:
        run = self.job
        async with run.database.read() as session:
            saved = await load_checkpoint(session=session, name=self.name)
        if saved is not None:
            self.state = dict(saved)
            run.log.info("resuming the contacts walk at %s", self._where())
        else:
            self.state = {"started": run.now_utc.isoformat(), "phase": "departments", "queue": [ROOT_DEPARTMENT],
                          "departments": [], "index": 0, "cursor": 0, "groups": None, "people": 0}
            async with run.services.outbox.unit_of_work() as work:
                await delete_checkpoints_except(session=work.session, prefix=CHECKPOINT_PREFIX, keep=self.name)
                await self._save(work.session)
        if self.state["phase"] == "departments":
            await self._departments()
        if self.state["phase"] == "users":
            await self._users()
        if self.state["phase"] == "groups":
            await self._groups()
        if self.state["phase"] == "finish":
            await self._finish()

    def _where(self) -> str:
        state = self.state
        if state["phase"] == "users":
            return f"users of department {state['index'] + 1}/{len(state['departments'])}, cursor {state['cursor']}"
        return str(state["phase"])

    @property
    def _started(self) -> datetime:
        return datetime.fromisoformat(self.state["started"])

    async def _departments(self) -> None:
        while self.state["queue"]:
            parent = self.state["queue"][0]
            try:
                children = await self.contacts.sub_departments(parent)
            except UnknownDepartment:
                children = []  # deleted since its parent listed it
            async with self.job.services.outbox.unit_of_work() as work:
                await store_departments(session=work.session, synced_at=self._started,
                                        departments=[(d.dept_id, d.name, d.parent_id) for d in children])
                self.state["queue"] = self.state["queue"][1:] + [d.dept_id for d in children]
                self.state["departments"] = self.state["departments"] + [parent]
                await self._save(work.session)
        self.state["phase"] = "users"

    async def _users(self) -> None:
        departments: list[int] = self.state["departments"]
        corp_id = self.job.config.dingtalk.corp_id or None
        while self.state["index"] < len(departments):
            try:
                page = await self.contacts.department_users(departments[self.state["index"]], self.state["cursor"])
            except UnknownDepartment:
                page = EmployeePage((), None)  # deleted since the walk listed it: its people are elsewhere now
            async with self.job.services.outbox.unit_of_work() as work:
                await store_employees(session=work.session, records=page.employees, corp_id=corp_id,
                                      synced_at=self._started)
                self.state["people"] = self.state["people"] + len(page.employees)
                if page.next_cursor is None:
                    self.state["index"], self.state["cursor"] = self.state["index"] + 1, 0
                else:
                    self.state["cursor"] = page.next_cursor
                await self._save(work.session)
        self.state["phase"] = "groups"

    async def _groups(self) -> None:
        if self.state["groups"] is None:
            async with self.job.database.read() as session:
                projects = await list_projects(session=session, statuses=_WALKED_STATUSES)
            self.state["groups"] = [p.id for p in projects if p.client_conversation_id]
        while self.state["groups"]:
            project_id = self.state["groups"][0]
            async with self.job.database.read() as session:
                project = await session.get(Project, project_id)
            if project is not None and project.client_conversation_id:
                await read_group_members(self.job, self.contacts, project.client_conversation_id, project)
            async with self.job.services.outbox.unit_of_work() as work:
                self.state["groups"] = self.state["groups"][1:]
                await self._save(work.session)
        self.state["phase"] = "finish"

    async def _finish(self) -> None:
        async with self.job.services.outbox.unit_of_work() as work:
            gone = await mark_departed(session=work.session, walk_started=self._started, now=self.job.now_utc)
            self.state["phase"] = "done"
            await self._save(work.session)
        self.job.log.info("contacts walk done: %d departments, %d people listed, %d marked as having left",
                          len(self.state["departments"]), self.state["people"], len(gone))


async def read_group_members(run: JobRunContext, contacts: Contacts, conversation: str,
                             client_of: Project | None = None) -> int:
    """Learn the people of other organizations in a group, and that it has them; in ``client_of``'s client group
    they become its 客户联系人. Returns how many there are. A group the member API does not serve (an ordinary
    group: ``groupPermissionDenied``…) leaves them to be learned from messages."""
    outsiders: dict[str, str] = {}
    token: str | None = None
    try:
        while True:
            page: GroupMembers = await contacts.group_members(conversation, token)
            outsiders.update({u: page.names.get(u, "") for u in page.outsider_union_ids})
            token = page.next_token
            if token is None:
                break
    except InvalidRequest as exc:
        run.log.info("members of group %s are not listed by DingTalk (%s): learned from messages", conversation,
                     exc.code)
        return 0
    if not outsiders:
        return 0
    async with run.services.outbox.unit_of_work() as work:
        session = work.session
        for union_id, name in outsiders.items():
            person = await learn_external(session=session, union_id=union_id, name=name or None, now=run.now_utc)
            if client_of is not None and client_of.status != ProjectStatus.CLOSED:
                await ensure_client_contact(session=session, project=client_of, user_id=person.user_id,
                                            corp_id=person.corp_id)
        await note_external_members(session=session, conversation_id=conversation, synced=True, now=run.now_utc)
        await leave_internal_group(session, conversation)
    return len(outsiders)


feature = Feature("directory", jobs=jobs)

__all__ = ["feature", "CHECKPOINT_PREFIX", "DirectoryWalk", "GROUP_MEMBERS_JOB", "SYNC_JOB", "directory_sync_job",
           "group_members_job", "jobs", "read_group_members"]
