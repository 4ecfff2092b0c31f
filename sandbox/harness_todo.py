"""The harness's 待办 helpers: what people see and do in their DingTalk todo lists (mixed into `Sandbox`).

    await sb.todos("李明")                     # the list the page shows: [{id, subject, dueTime, done, …}]
    await sb.delete_todo("李明", task_id)       # the creator deletes it; anyone else leaves it
    await sb.edit_todo("王建国", task_id, executors=["赵磊"], due_time=ms)    # the creator edits it
    await sb.todo(task_id)                      # the task as GET …/tasks/{id} shows it (None once deleted)

Each change made here is a change "in DingTalk": it pushes todo_task_* events to the owning app.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Awaitable, Callable, Iterable, TypeVar

from .web_todos import todos_answer

if TYPE_CHECKING:
    from .emulator import Emulator

T = TypeVar("T")


class TodoHelpers:
    emulator: "Emulator"
    call: Callable[..., Awaitable[Any]]

    def union_id(self, user: str) -> str:
        """A person's unionId (by userId or name): what the todo APIs take."""
        return self.emulator.world.user(user).union_id

    def _union_ids(self, users: Iterable[str] | None) -> list[str] | None:
        return None if users is None else [self.union_id(u) for u in users]

    async def todos(self, user: str) -> list[dict[str, Any]]:
        """The person's 待办 as the page shows it (not done first, by due time)."""
        person = self.emulator.world.user(user)
        return (await self.call(todos_answer, self.emulator, person))["todos"]

    async def todo_due_count(self, user: str) -> int:
        """The red dot on the person's 待办 entry: not done and due today or overdue."""
        person = self.emulator.world.user(user)
        return await self.call(self.emulator.todos.due_count, person)

    async def todo(self, task_id: str) -> dict[str, Any] | None:
        def read() -> dict[str, Any] | None:
            task = self.emulator.todos.tasks.get(task_id)
            return None if task is None or task.deleted else task.to_api(self.emulator.world)

        return await self.call(read)

    async def todo_tasks(self, *, include_deleted: bool = False) -> list[dict[str, Any]]:
        """Every task of every app, as the get API shows them (with `deleted` added)."""
        def read() -> list[dict[str, Any]]:
            return [{**t.to_api(self.emulator.world), "deleted": t.deleted}
                    for t in self.emulator.todos.tasks.values() if include_deleted or not t.deleted]

        return await self.call(read)

    async def delete_todo(self, user: str, task_id: str) -> str:
        """The person deletes the todo in DingTalk: "deleted" (the creator) or "left" (an executor/participant)."""
        person = self.emulator.world.user(user)
        return await self.call(self.emulator.todos.delete_by_user, person, task_id)

    async def edit_todo(self, user: str, task_id: str, *, executors: Iterable[str] | None = None,
                        participants: Iterable[str] | None = None, due_time: int | None = None,
                        subject: str | None = None) -> dict[str, Any]:
        """The creator edits the todo in DingTalk (people by userId or name)."""
        person = self.emulator.world.user(user)
        task = await self.call(self.emulator.todos.edit_by_user, person, task_id,
                               executors=self._union_ids(executors), participants=self._union_ids(participants),
                               due_time=due_time, subject=subject)
        return await self.call(task.to_api, self.emulator.world)

    async def set_todo_done(self, user: str, task_id: str, done: bool = True) -> dict[str, Any]:
        """The creator completes the todo, or an executor their part (the page never offers it for work todos)."""
        person = self.emulator.world.user(user)
        task = await self.call(self.emulator.todos.set_done_by_user, person, task_id, done)
        return await self.call(task.to_api, self.emulator.world)
