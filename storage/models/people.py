"""People the bot has seen, keyed by their DingTalk id.

Other tables store DingTalk user ids directly (no foreign key to ``users``): people show up in mentions and approval
callbacks before they ever talk to the bot, and refusing those rows would lose real data. ``users`` is the name
directory used to display them.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import UniqueConstraint
from sqlmodel import Field

from storage.models.base import NAME_LEN, USER_ID_LEN, TableBase, created_at_field, table_args, updated_at_field


class User(TableBase, table=True):
    __tablename__ = "users"
    __table_args__ = table_args(UniqueConstraint("user_id"))

    id: int | None = Field(default=None, primary_key=True)
    user_id: str = Field(max_length=USER_ID_LEN)  # DingTalk userId (= staffId inside the organisation)
    name: str = Field(max_length=NAME_LEN)
    # The project this person last worked on: in a 1:1 chat, a command without 项目:编号 means that one.
    last_project_id: int | None = Field(default=None, foreign_key="projects.id", ondelete="SET NULL")
    created_at: datetime = created_at_field()
    updated_at: datetime = updated_at_field()
