"""A tiny test feature for the kernel's end-to-end tests: commands whose side effect is one audit row.

Kept out of ``handlers/`` so production help never shows them; the tests add ``Feature("e2e", router=router)`` to ``App``'s features,
and the subprocess entry script (``bot_entry.py``) does the same.
"""

from __future__ import annotations

from datetime import timedelta

from bot.args import Param
from bot.context import Context
from bot.incoming import Incoming
from bot.jobs import JobRegistry, JobRunContext, every
from bot.outbox import enqueue, group_target, users_target
from bot.router import Router
from domain.errors import Conflict
from domain.replies import File
from storage.repo import write_audit

RECORD_ACTION = "e2e.record"
JOB_ACTION = "e2e.job"

router = Router("e2e", title="测试")
NUMBER = Param.number("编号", positional=True, required=True)


@router.command("记录", summary="记一笔（测试）", examples=["记录 1"], params=(NUMBER,))
async def record(incoming: Incoming, ctx: Context) -> str:
    number = ctx.args.integer("编号")
    await write_audit(session=ctx.session, action=RECORD_ACTION, actor_user_id=incoming.sender_id,
                      entity="e2e", entity_id=number)
    return f"已记录 {number}"


@router.command("记录后出错", summary="记一笔然后崩溃（测试）", examples=["记录后出错 1"], params=(NUMBER,))
async def record_then_crash(incoming: Incoming, ctx: Context) -> str:
    await write_audit(session=ctx.session, action=RECORD_ACTION, entity="e2e", entity_id=ctx.args.integer("编号"))
    await ctx.reply("处理中……")
    raise RuntimeError("boom")


@router.command("记录后冲突", summary="记一笔然后报用户错误（测试）", examples=["记录后冲突 1"], params=(NUMBER,))
async def record_then_conflict(incoming: Incoming, ctx: Context) -> str:
    await write_audit(session=ctx.session, action=RECORD_ACTION, entity="e2e", entity_id=ctx.args.integer("编号"))
    raise Conflict("已经有了，不能重复记录。")


@router.command("通知", summary="向本群发一条通知（测试）", examples=["通知 1"], params=(NUMBER,))
async def notify(incoming: Incoming, ctx: Context) -> str:
    number = ctx.args.integer("编号")
    await enqueue(ctx.session, f"e2e-notice:{number}", group_target(incoming.conversation_id), f"通知 {number}")
    # The same key again (a re-run, a second job): stored once.
    await enqueue(ctx.session, f"e2e-notice:{number}", group_target(incoming.conversation_id), f"通知 {number}")
    return f"已安排通知 {number}"


@router.command("两条", summary="回答两条消息（测试）", examples=["两条"])
async def two_answers(incoming: Incoming, ctx: Context) -> str:
    await ctx.reply("第一条")
    return "第二条"


@router.command("文件", summary="回答一个文件（测试）", examples=["文件"])
async def a_file(incoming: Incoming, ctx: Context) -> File:
    return File("测试报告.docx", data=b"PK\x03\x04 not really a docx")


jobs = JobRegistry()


TICK_USER = "zhoumin"


@jobs.scheduled("e2e_tick", every(timedelta(seconds=1)))
async def tick_job(run: JobRunContext) -> None:
    """Records its period and tells 周敏 which process ran it: a period seen twice would be a job run twice."""
    async with run.services.outbox.unit_of_work() as work:
        await write_audit(session=work.session, action=JOB_ACTION, entity="e2e_tick", entity_id=run.period_key)
        await enqueue(work.session, f"e2e-tick:{run.period_key}", users_target(TICK_USER),
                      f"tick {run.period_key} {run.owner}")
