"""Leaders' digest (项目周览): every running project on one screen, 1:1 to each leader once a week.

At ``schedule.leaders_digest_day/time`` (default Monday 09:00). Each project shows its phase, progress facts, a
traffic-light status (``reports.digest.project_health``), its overdue deliverables and pending approvals; the worst
come first, and when the projects do not fit in one message the healthy ones collapse into a line of names.

Nothing is sent when that day is a rest day (a holiday Monday): leaders get the next week's digest. Projects
已立项/进行中 and 已暂停 are listed (leaders want to see what is stuck; a paused project counts no overdue
deliverables because its deadlines are stopped). The data comes from one statement whatever the number of projects,
read in chunks (``domain.report_data.gather_digest_data``).
"""

from __future__ import annotations

from datetime import timedelta

from bot.feature import Feature
from bot.jobs import JobRegistry, JobRunContext, weekly
from bot.outbox import enqueue, users_target
from domain.replies import Markdown
from domain.report_data import gather_digest_data
from reports.digest import render_leaders_digest
from reports.pool import render_off_loop

jobs = JobRegistry()

# Monday 09:00 plus a day: a digest that arrives on Wednesday is stale; next week's replaces it.
DIGEST_MISFIRE = timedelta(days=1)


def digest_key(period_key: str) -> str:
    return f"leaders-digest:{period_key}"


@jobs.scheduled(
    "leaders_digest",
    weekly(day=lambda cfg: cfg.schedule.leaders_digest_day, at=lambda cfg: cfg.schedule.leaders_digest_time),
    misfire=DIGEST_MISFIRE,
)
async def leaders_digest_job(run: JobRunContext) -> None:
    leaders = list(run.config.organization.leaders)
    if not leaders:
        run.log.info("no leaders configured (organization.leaders): no digest")
        return
    services = run.services
    today = run.today
    if not services.calendar.is_workday(today):
        # Like the reminders, nothing on holidays (国庆 Monday): a week of holiday has little to report anyway.
        run.log.info("%s is a rest day: no digest this week", today)
        return
    async with services.database.read() as session:
        projects = await gather_digest_data(session=session, today=today, calendar=services.calendar,
                                            tz=run.config.tz)
    # Sorting and wording thousands of projects is CPU work: off the loop.
    title, text = await render_off_loop(render_leaders_digest, projects, today=today)
    async with services.outbox.unit_of_work() as work:
        queued = await enqueue(work.session, digest_key(run.period_key), users_target(leaders), Markdown(title, text))
    run.log.info("digest of %d projects %s for %d leaders", len(projects), "queued" if queued else "already queued",
                 len(leaders))


feature = Feature("digest", jobs=jobs)

__all__ = ["feature", "digest_key", "jobs", "leaders_digest_job"]
