"""The 看板's charts: drawn by ``reports.charts`` (the reports' own renderers and CJK font) in a worker thread,
served as PNG images of the page, and kept while their data is unchanged.

A page computes each chart's data and ``offer``s it: the store answers a key (a digest of the chart's kind and data)
that the page puts in the image's URL. The image request then finds the data by its key, if the viewer asking is one
the data was offered to; otherwise (another bot process behind the proxy, an evicted entry, someone else's URL) the
caller recomputes the data for its own viewer. The drawing is cached by the same key, so an unchanged portfolio is
not drawn again for every visit.
"""

from __future__ import annotations

import asyncio
import hashlib
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from reports import charts
from storage.repo.dashboard import Scope

# kind -> (title, renderer)
_TITLES = charts.PORTFOLIO_CHART_TITLES
PORTFOLIO_CHARTS: dict[str, tuple[str, Callable[[Any], bytes]]] = {
    "projects_by_health": (_TITLES["projects_by_health"], charts.projects_by_health_png),
    "projects_by_phase": (_TITLES["projects_by_phase"], charts.projects_by_phase_png),
    "overdue_by_week": (_TITLES["overdue_by_week"], charts.overdue_by_week_png),
}


@dataclass
class _Offer:
    kind: str
    data: Any
    scopes: set[Scope] = field(default_factory=set)


class ChartStore:
    def __init__(self, size: int = 128) -> None:
        self._size = size
        self._offers: OrderedDict[str, _Offer] = OrderedDict()
        self._pngs: OrderedDict[str, bytes] = OrderedDict()

    @staticmethod
    def key(kind: str, data: Any) -> str:
        return hashlib.sha256(f"{kind}\0{data!r}".encode("utf-8")).hexdigest()[:32]

    def offer(self, scope: Scope, kind: str, data: Any) -> str:
        """Remember ``data`` as what ``scope`` may see of chart ``kind``; the key for its image URL."""
        key = self.key(kind, data)
        offer = self._offers.get(key) or _Offer(kind, data)
        offer.scopes.add(scope)
        self._remember(self._offers, key, offer)
        return key

    def offered(self, scope: Scope, key: str) -> tuple[str, Any] | None:
        """(kind, data) offered to ``scope`` under ``key``; None if not (or no longer) known."""
        offer = self._offers.get(key)
        if offer is None or scope not in offer.scopes:
            return None
        return offer.kind, offer.data

    async def png(self, kind: str, data: Any, draw: Callable[[Any], bytes]) -> bytes:
        """The chart drawn by ``draw(data)`` in a worker thread, or the drawing of the same data made before."""
        key = self.key(kind, data)
        png = self._pngs.get(key)
        if png is None:
            png = await asyncio.to_thread(draw, data)
            self._remember(self._pngs, key, png)
        return png

    def _remember(self, items: OrderedDict[str, Any], key: str, value: Any) -> None:
        items[key] = value
        items.move_to_end(key)
        while len(items) > self._size:
            items.popitem(last=False)


__all__ = ["ChartStore", "PORTFOLIO_CHARTS"]
