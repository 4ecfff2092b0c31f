"""Which interactive cards the bot may send: the shipped definitions (``bot/cards/*.json``, format
``dingpm-card/1``) and the template id each one has in this deployment.

A card is sent only when cards are enabled and its template has an id (``cards.template_ids`` first, then the
definition's ``templateIds[cards.template_env]``); otherwise the feature sends its markdown or actionCard message,
as before cards existed. The card's data is built from the definition's variables only: a key the template does not
declare would be silently ignored by DingTalk, so ``check`` refuses it here.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bot.config import CardsConfig

SHIPPED = Path(__file__).resolve().parent / "cards"
FORMAT = "dingpm-card/1"


@dataclass(frozen=True)
class CardTemplate:
    name: str
    template_id: str
    variables: frozenset[str]
    private: frozenset[str]

    def check(self, data: dict[str, Any], *, private: bool = False) -> dict[str, Any]:
        allowed = self.private if private else self.variables - self.private
        unknown = set(data) - allowed
        if unknown:
            raise ValueError(f"card {self.name}: {sorted(unknown)} are not {'private ' if private else ''}variables "
                             "of its template")
        return data


class CardCatalog:
    def __init__(self, templates: dict[str, CardTemplate]) -> None:
        self._templates = templates

    @classmethod
    def load(cls, config: CardsConfig) -> CardCatalog:
        """Read the definitions (a file read: call it off the event loop). Cards off: an empty catalog."""
        if not config.enabled:
            return cls({})
        templates: dict[str, CardTemplate] = {}
        for path in sorted((config.definitions_dir or SHIPPED).glob("*.json")):
            raw = json.loads(path.read_text(encoding="utf-8"))
            if raw.get("format") != FORMAT:
                raise ValueError(f"{path}: not a {FORMAT} card definition")
            name = str(raw["name"])
            template_id = config.template_ids.get(name) or (raw.get("templateIds") or {}).get(config.template_env)
            if not template_id:
                continue  # not built in this deployment's card builder: the feature falls back to messages
            variables = raw.get("variables") or []
            templates[name] = CardTemplate(
                name=name, template_id=str(template_id),
                variables=frozenset(str(v["name"]) for v in variables),
                private=frozenset(str(v["name"]) for v in variables if v.get("private")))
        return cls(templates)

    def get(self, name: str) -> CardTemplate | None:
        """The card's template, or None: send the message instead."""
        return self._templates.get(name)

    def __bool__(self) -> bool:
        return bool(self._templates)


__all__ = ["CardCatalog", "CardTemplate", "SHIPPED"]
