"""The kernel's one rule (``bot.kernel.answer``), without a database: what is kept when a command fails."""

from __future__ import annotations

from datetime import datetime

from bot.config import parse_config
from bot.context import Context, FrozenClock, Services
from bot.dispatcher import Dispatcher, Outcome
from bot.incoming import Incoming
from bot.kernel import Undeliverable, answer
from bot.router import Router
from bot.testing import RecordingUnits, make_incoming
from domain.errors import Conflict
from domain.replies import Text

router = Router("kernel-test")


@router.command("进度条", summary="先报进度再失败", examples=("进度条",))
async def progress_then_conflict(incoming: Incoming, ctx: Context) -> str:
    await ctx.reply("处理中…")
    raise Conflict("已经处理过了。")


@router.command("两句", summary="两条回复", examples=("两句",))
async def two_replies(incoming: Incoming, ctx: Context) -> str:
    await ctx.reply("第一句")
    return "第二句"


@router.command("看看", summary="只读", examples=("看看",), reads_only=True)
async def look(incoming: Incoming, ctx: Context) -> str:
    await ctx.work.write_after(lambda session: _noop())
    return "看好了"


async def _noop() -> None:
    return None


def dispatcher() -> Dispatcher:
    config = parse_config({"dingtalk": {"client_id": "id", "client_secret": "real-secret"}}, environ={})
    built = Dispatcher(Services(config=config, clock=FrozenClock(datetime(2026, 9, 2, 1))))
    built.include_routers(router)
    return built


def test_outcomes_know_whether_they_roll_back() -> None:
    kept = {o for o in Outcome if not o.rolls_back}
    assert kept == {Outcome.OK, Outcome.GREETING, Outcome.UNKNOWN_COMMAND, Outcome.GROUP_HELP}
    assert [o for o in Outcome if o.failed] == [Outcome.ERROR]


async def test_a_failed_command_keeps_only_its_final_answer_settled_in_a_fresh_unit() -> None:
    chat, units = dispatcher(), RecordingUnits()
    handled = await answer(chat, chat.route(make_incoming("进度条")), units)
    assert handled.outcome is Outcome.CONFLICT and units.replies == [Text("已经处理过了。")]
    assert len(units.settled) == 1  # the command's own unit was rolled back; a new one settled the answer


async def test_every_answer_of_a_kept_command_is_settled_with_it() -> None:
    chat, units = dispatcher(), RecordingUnits()
    handled = await answer(chat, chat.route(make_incoming("两句")), units)
    assert handled.outcome is Outcome.OK and units.replies == [Text("第一句"), Text("第二句")]


async def test_a_read_only_command_is_settled_in_a_write_unit_after_its_read() -> None:
    chat, units = dispatcher(), RecordingUnits()
    route = chat.route(make_incoming("看看"))
    assert route.reads_only and route.command is not None and route.command.name == "看看"
    await answer(chat, route, units)
    assert units.replies == [Text("看好了")] and not units.settled[0].read_only


async def test_an_answer_that_cannot_be_sent_becomes_an_apology() -> None:
    class Refusing(RecordingUnits):
        async def settle(self, work, handled) -> None:
            if handled.outcome is not Outcome.ERROR:
                raise Undeliverable("answer cannot be sent: too long")
            await super().settle(work, handled)

    chat, units = dispatcher(), Refusing()
    handled = await answer(chat, chat.route(make_incoming("两句")), units)
    assert handled.outcome is Outcome.ERROR and handled.error == "answer cannot be sent: too long"
    [apology] = units.replies
    assert handled.trace_id in apology.text


def test_routing_happens_once_from_the_text() -> None:
    chat = dispatcher()
    assert chat.route(make_incoming("两句")).command.name == "两句"
    unknown = chat.route(make_incoming("三句"))
    assert unknown.command is None and unknown.outcome is Outcome.UNKNOWN_COMMAND and unknown.reads_only
