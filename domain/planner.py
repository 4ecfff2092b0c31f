"""The project planner: a process template laid out on working days.

Pure: template + start date (+ optional end date) + `WorkCalendar` -> `storage.templates.ProjectPlan`, which
``storage.repo.plans`` persists. It lives in the domain because it is a business rule (how phases share the span,
how deliverable offsets scale), not a property of the template file.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from datetime import date

from storage.templates import (
    DeliverableSpec,
    PlannedDeliverable,
    PlannedPhase,
    ProcessTemplate,
    ProjectPlan,
    Recurrence,
)
from storage.workdays import WorkCalendar


class PlanError(ValueError):
    """The requested dates cannot hold the template (e.g. end before start); the message is Chinese, for users."""



def plan_project(
    template: ProcessTemplate,
    start: date,
    calendar: WorkCalendar,
    end: date | None = None,
) -> ProjectPlan:
    """Lay the template out on working days from ``start`` (rolled forward to a working day).

    Sequential phases follow each other without gaps; a parallel phase spans its host. Without ``end`` each phase
    gets its template duration. With ``end`` (rolled back to a working day) the sequential phases are scaled to
    fill [start, end] exactly, proportionally to their template durations (largest-remainder rounding, every
    phase at least one working day). Deliverable offsets scale with their phase, except daily/weekly ones whose
    rhythm does not depend on the phase length (those are only clamped into the phase). Raises `PlanError` when
    ``end`` is before ``start`` or leaves fewer working days than there are sequential phases.
    """
    first_day = calendar.roll_forward(start)
    sequential = [p for p in template.phases if not p.is_parallel]
    template_days = [p.duration_days or 0 for p in sequential]
    if end is None:
        days = template_days
        scaled = False
    else:
        last_day = calendar.roll_backward(end)
        if last_day < first_day:
            raise PlanError(f"结束日期 {end.isoformat()} 早于开始日期 {start.isoformat()} (按工作日计)")
        available = calendar.count_workdays(first_day, last_day)
        if available < len(sequential):
            raise PlanError(
                f"工期过短: {first_day.isoformat()} 至 {last_day.isoformat()} 只有 {available} 个工作日, "
                f"模板「{template.name}」有 {len(sequential)} 个阶段, 每个阶段至少需要 1 个工作日"
            )
        days = _apportion(template_days, available)
        scaled = days != template_days

    spans: dict[str, tuple[date, date, int]] = {}
    cursor = first_day
    for phase, length in zip(sequential, days, strict=True):
        phase_end = calendar.add_workdays(cursor, length - 1)
        spans[phase.name] = (cursor, phase_end, length)
        cursor = calendar.next_workday(phase_end)

    phases: list[PlannedPhase] = []
    deliverables: list[PlannedDeliverable] = []
    order = 0
    for index, phase in enumerate(template.phases, start=1):
        span_start, span_end, length = spans[phase.parallel_with or phase.name]
        phases.append(
            PlannedPhase(
                name=phase.name,
                order=index,
                start=span_start,
                end=span_end,
                duration_days=length,
                parallel_with=phase.parallel_with,
            )
        )
        template_length = template.phase_duration(phase)
        for activity in phase.activities:
            for spec in activity.deliverables:
                order += 1
                due = None
                if spec.recurrence is not Recurrence.PER_EVENT:
                    offset = _scaled_offset(spec, template_length, length)
                    due = calendar.add_workdays(span_start, offset)
                deliverables.append(
                    PlannedDeliverable(
                        phase=phase.name,
                        activity=activity.name,
                        name=spec.name,
                        order=order,
                        required=spec.required,
                        owner_role=spec.owner_role.value,
                        due=due,
                        recurrence=spec.recurrence.value,
                        flags=tuple(f.value for f in spec.flags),
                        register=spec.register_name.value if spec.register_name else None,
                        notes=spec.notes,
                    )
                )
    last_end = max(span[1] for span in spans.values())
    return ProjectPlan(
        template=template.name,
        start=first_day,
        end=last_end,
        scaled=scaled,
        phases=tuple(phases),
        deliverables=tuple(deliverables),
    )


def _apportion(weights: Sequence[int], total: int) -> list[int]:
    """Split ``total`` working days over phases proportionally to ``weights``, each at least 1, summing exactly to
    ``total``. Largest-remainder rounding; ties go to the earlier phase so the result is deterministic, and
    ``total == sum(weights)`` gives back ``weights`` unchanged."""
    weight_sum = sum(weights)
    ideal = [total * w / weight_sum for w in weights]
    shares = [max(1, math.floor(x)) for x in ideal]
    indices = range(len(weights))
    # Flooring leaves days over: hand them to the phases that lost the most.
    for i in sorted(indices, key=lambda i: (-(ideal[i] - shares[i]), i))[: max(0, total - sum(shares))]:
        shares[i] += 1
    # The one-day minimum may overshoot: take back from the most over-served phases that can spare a day.
    while sum(shares) > total:
        i = min((i for i in indices if shares[i] > 1), key=lambda i: (ideal[i] - shares[i], -i))
        shares[i] -= 1
    return shares


def _scaled_offset(spec: DeliverableSpec, template_length: int, length: int) -> int:
    last = length - 1
    if spec.due_offset_days is None:
        return last
    offset = spec.due_offset_days
    if spec.recurrence in (Recurrence.DAILY, Recurrence.WEEKLY) or template_length == length:
        return min(offset, last)
    if template_length <= 1:
        return 0
    # Map the phase's first day to the first day and its last day to the last day.
    return min(last, round(offset * last / (template_length - 1)))
