"""What every page handler is given: the ``Board`` (built once when the dashboard starts) and the ``Viewer``."""

from __future__ import annotations

import asyncio
import hashlib
from dataclasses import dataclass, field
from datetime import date, timedelta, tzinfo
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlsplit

import jinja2
from aiohttp import web

from bot.config import Config
from storage.repo.dashboard import Scope
from web.charts_store import ChartStore
from web.portfolio import HEALTH_CSS
from web.sessions import Session, Signer, derive_secret

HERE = Path(__file__).resolve().parent
STATIC_DIR = HERE / "static"
TEMPLATES_DIR = HERE / "templates"


@dataclass(frozen=True, slots=True)
class Viewer:
    """Who is looking: a current employee signed in through 免登 (or, in the sandbox only, ``?user=``)."""

    user_id: str
    name: str
    role: str = ""  # 领导 / 项目管理员: sees every project; "" sees their own

    @property
    def scope(self) -> Scope:
        return Scope(self.user_id, every_project=bool(self.role))


def href(path: str, params: str) -> str:
    """``path?params``, or ``path`` when there are none."""
    return f"{path}?{params}" if params else path


def page_href(path: str, params: str, number: int) -> str:
    """``path?params&page=number`` (``params``: the page's other query parameters, already encoded)."""
    return f"{path}?{params}&page={number}" if params else f"{path}?page={number}"


def _static_version() -> str:
    """A digest of the shipped CSS and JS: asset URLs change when they do, so browsers may cache them long."""
    digest = hashlib.sha256()
    for path in sorted(STATIC_DIR.iterdir()):
        digest.update(path.name.encode())
        digest.update(path.read_bytes())
    return digest.hexdigest()[:10]


def _origin(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}"


@dataclass
class Board:
    """The dashboard's dependencies, built once at start (file reads here happen in ``build``, off the loop)."""

    config: Config
    database: Any
    dingtalk: Any
    calendar: Any
    clock: Any
    phase_order: tuple[str, ...]  # the process templates' phases, in order (the portfolio's phase chart)
    jinja: jinja2.Environment
    signer: Signer
    static_version: str
    public_url: str = ""  # set once the socket is bound (port 0)
    chart_store: ChartStore = field(default_factory=ChartStore)

    @classmethod
    def build(cls, *, config: Config, database: Any, dingtalk: Any, calendar: Any, clock: Any,
              templates: Any) -> Board:
        jinja = jinja2.Environment(
            loader=jinja2.FileSystemLoader(TEMPLATES_DIR),
            autoescape=True,  # every value is escaped: users' text shows as text, never as markup
            undefined=jinja2.StrictUndefined,
            trim_blocks=True,
            lstrip_blocks=True,
        )
        jinja.globals.update(page_href=page_href, href=href)
        jinja.filters["health_css"] = HEALTH_CSS.__getitem__  # a colour's name -> its CSS class suffix
        order: list[str] = []
        for template in templates or ():  # storage.templates.TemplateRegistry: every process template
            order += [phase.name for phase in template.phases if phase.name not in order]
        dashboard = config.dashboard
        return cls(config=config, database=database, dingtalk=dingtalk, calendar=calendar, clock=clock,
                   phase_order=tuple(order), jinja=jinja,
                   signer=Signer(derive_secret(dashboard.session_secret, config.dingtalk.client_secret)),
                   static_version=_static_version())

    # ---- facts pages need --------------------------------------------------------------------------------------

    @property
    def tz(self) -> tzinfo:
        return self.config.tz

    @property
    def base(self) -> str:
        """The path prefix of every route ("" or "/board")."""
        return self.config.dashboard.base_path

    @property
    def session_ttl(self) -> timedelta:
        return timedelta(hours=self.config.dashboard.session_hours)

    def today(self) -> date:
        return self.clock.today()

    def viewer_for(self, user_id: str, name: str) -> Viewer:
        organization = self.config.organization
        role = "领导" if user_id in organization.leaders else "项目管理员" if user_id in organization.project_admins else ""
        return Viewer(user_id, name, role)

    def content_security_policy(self) -> str:
        """No inline script, style or handler; scripts and connections to ourselves and DingTalk's JSAPI only."""
        jsapi = _origin(self.config.dashboard.jsapi_url)
        return ("default-src 'none'; "
                f"script-src 'self' {jsapi}; connect-src 'self' {jsapi}; "
                "img-src 'self'; style-src 'self'; font-src 'self'; "
                "form-action 'self'; base-uri 'none'; frame-ancestors 'none'")

    def render(self, name: str, **context: Any) -> str:
        """A page's HTML (call it in a worker thread)."""
        return self.jinja.get_template(name).render(base=self.base, static_version=self.static_version, **context)

    async def page(self, name: str, request: web.Request, *, status: int = 200, **context: Any) -> web.Response:
        """Render template ``name`` off the loop; the signed-in viewer and their CSRF token (for the sign-out form)
        come from the request."""
        session = request.get(SESSION)
        context.setdefault("viewer", request.get(VIEWER))
        context.setdefault("csrf", self.signer.csrf_token(session.nonce) if session is not None else "")
        if "project" in context:
            context["project_path"] = f"{self.base}/p/{quote(context['project'].code, safe='')}"
        html = await asyncio.to_thread(self.render, name, **context)
        return web.Response(text=html, status=status, content_type="text/html", charset="utf-8")


BOARD = web.AppKey("board", Board)
SESSION = web.RequestKey("session", Session)  # set by the guard when the request has a valid session
VIEWER = web.RequestKey("viewer", Viewer)  # likewise: who is looking


def board_of(request: web.Request) -> Board:
    return request.app[BOARD]


def viewer_of(request: web.Request) -> Viewer:
    """The signed-in viewer (every page handler runs behind the guard, which signs people in first)."""
    return request[VIEWER]


__all__ = ["BOARD", "Board", "SESSION", "STATIC_DIR", "TEMPLATES_DIR", "VIEWER", "Viewer", "board_of", "viewer_of"]
