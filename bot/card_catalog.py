"""Which interactive cards the bot may send: the shipped definitions (``bot/cards/*.json``, format
``dingpm-card/1``) and the template id each one has in this deployment.

A card is sent only when cards are enabled and its template has an id (``cards.template_ids`` first, then the
definition's ``templateIds[cards.template_env]``); otherwise the feature sends its markdown or actionCard message,
as before cards existed. Each card's data carries the definition's variables only (a key the template does not
declare is silently ignored by DingTalk; the emulator warns of one, and the end-to-end tests assert none).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from bot.config import CardsConfig

SHIPPED = Path(__file__).resolve().parent / "cards"
FORMAT = "dingpm-card/1"


@dataclass(frozen=True)
class CardTemplate:
    name: str
    template_id: str
    variables: frozenset[str]
    private: frozenset[str]


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
