"""DingTalk 待办 the bot keeps for deliverable owners: one row per deliverable and owner, what DingTalk should show.

The row is the bot's intent (``state``, ``subject``, ``due_at``) plus what it learned from DingTalk (``task_id``,
``executor_union_id``). The sync (``domain.todo_sync``) changes the intent in the transaction of the command that
changed the plan and queues an outbox operation; the todo relay (``bot.todo_relay``) brings DingTalk in line with the
row as it is when the operation is sent, so operations may run late, twice or out of order and still end right.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Index, UniqueConstraint
from sqlmodel import Field

from storage.models.base import ENUM_LEN, NAME_LEN, TITLE_LEN, USER_ID_LEN, TableBase, created_at_field, table_args, \
    updated_at_field, utc_field
from storage.models.enums import TodoState
from storage.models.people import UNION_ID_LEN
from storage.models.types import EnumString


class TodoItem(TableBase, table=True):
    __tablename__ = "todos"
    __table_args__ = table_args(
        UniqueConstraint("deliverable_id", "owner_user_id"),
        UniqueConstraint("source_id"),
        Index("ix_todos_project_id", "project_id"),
        Index("ix_todos_task_id", "task_id"),
    )

    id: int | None = Field(default=None, primary_key=True)
    project_id: int = Field(foreign_key="projects.id", ondelete="CASCADE")
    deliverable_id: int = Field(foreign_key="deliverables.id", ondelete="CASCADE")
    owner_user_id: str = Field(max_length=USER_ID_LEN)
    # The todo APIs address people by unionId: the owner's is the task's creator (the path of every call); the
    # executor is the owner too, unless someone reassigned the task in DingTalk (the bot then follows them).
    creator_union_id: str = Field(max_length=UNION_ID_LEN)
    executor_union_id: str = Field(max_length=UNION_ID_LEN)
    # ``dingpm:<deliverable>:<owner>:<generation>``: unique per task; a re-created task takes the next generation, so a
    # deleted task that still holds its sourceId in DingTalk does not block the new one.
    source_id: str = Field(max_length=TITLE_LEN)
    generation: int = Field(default=0, nullable=False)
    task_id: str | None = Field(default=None, max_length=NAME_LEN)  # DingTalk's taskId, once created
    subject: str = Field(max_length=TITLE_LEN * 2)
    due_at: datetime = utc_field(nullable=False)
    state: TodoState = Field(default=TodoState.OPEN, sa_type=EnumString(TodoState, ENUM_LEN), nullable=False)
    revision: int = Field(default=0, nullable=False)  # bumped with each change: names the outbox operation
    created_at: datetime = created_at_field()
    updated_at: datetime = updated_at_field()


def todo_source_id(deliverable_id: int, owner_user_id: str, generation: int) -> str:
    return f"dingpm:{deliverable_id}:{owner_user_id}:{generation}"
