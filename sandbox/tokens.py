"""Access tokens shared by the new (`/v1.0/oauth2/accessToken`) and old (`/gettoken`) APIs.

§6: fetching again while a token is valid returns the same token and extends it;
either token is accepted on both hosts (§13.1 item 8).
"""

from __future__ import annotations

from dataclasses import dataclass

from .clock import Clock
from .ids import IdFactory
from .world import App, World


@dataclass
class IssuedToken:
    token: str
    app_id: str
    expires_at: float


class TokenStore:
    def __init__(self, world: World, clock: Clock, ids: IdFactory, ttl: float):
        self._world = world
        self._clock = clock
        self._ids = ids
        self.ttl = ttl
        self._by_app: dict[str, IssuedToken] = {}
        self._by_token: dict[str, IssuedToken] = {}

    def issue(self, app: App) -> IssuedToken:
        now = self._clock.now()
        current = self._by_app.get(app.client_id)
        if current is not None and current.expires_at > now:
            current.expires_at = now + self.ttl
            return current
        if current is not None:
            self._by_token.pop(current.token, None)
        issued = IssuedToken(self._ids.access_token(), app.client_id, now + self.ttl)
        self._by_app[app.client_id] = issued
        self._by_token[issued.token] = issued
        return issued

    def resolve(self, token: str | None) -> App | None:
        """The app a still-valid token belongs to."""
        if not token:
            return None
        issued = self._by_token.get(token)
        if issued is None or issued.expires_at <= self._clock.now():
            return None
        return self._world.apps.get(issued.app_id)

    def revoke_all(self) -> None:
        self._by_app.clear()
        self._by_token.clear()
