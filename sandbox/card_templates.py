"""Card definitions: what a template built in DingTalk's card builder holds, as a JSON file.

A real interactive card is a template (built and published in the card platform,
referenced by id) plus string data (P2 §1.1, §1.10). The emulator cannot read the
builder's export, so the project ships one small JSON file per template (format
`dingpm-card/1`, documented with a worked example in `sandbox/README.md`):

    name, title, kind, templateIds {environment: id}, published,
    variables [{name, type, private, description}],
    layout {title, status {text, color}, body, fields [...], lists [...]},
    inputs [{id, label, placeholder, required, multiline, maxLength, visibleWhen}],
    buttons [{id, text, style, visibleWhen, disabledWhen, params, successWhen, successToast, failureToast}],
    links [{text, url, visibleWhen}], closeButton

Text in `layout`, `links` and button labels may use `${variable}`; conditions are
small JSON trees (`{"var": "ackStatus", "op": "==", "value": ""}`, `all`, `any`, `not`).
A file that names an unknown variable, input or colour is refused when loaded, so the
bot's definitions are checked by every emulator start.

The emulator registers each template under `templateIds[<environment>]`
(`EmulatorConfig.card_template_env`, default "sandbox"), validates card data against
the declared variables (warnings, as the real client silently ignores bad values),
renders cards for the web page, builds a button's callback `params` and picks its toast.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Iterator, Mapping

FORMAT = "dingpm-card/1"
VARIABLE_TYPES = ("string", "number", "boolean", "markdown", "array", "object")
KINDS = ("message", "standard", "top")          # 消息卡片, 标准卡片, 吊顶卡片
COLOURS = ("blue", "green", "orange", "red", "grey")
BUTTON_STYLES = ("primary", "normal", "danger")
COMPARISONS = ("==", "!=", ">", ">=", "<", "<=", "in", "notIn", "empty", "notEmpty")
DEFAULT_SUCCESS_TOAST = "操作成功"
DEFAULT_FAILURE_TOAST = "操作失败，请稍后重试"

_REF = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")
_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


class CardTemplateError(ValueError):
    """A definition file is malformed: the message names the file and the problem."""


def card_string(value: Any) -> str:
    """A value as card data carries it: strings as they are, the rest as JSON text (P2 §1.1)."""
    if isinstance(value, str):
        return value
    return json.dumps(value, ensure_ascii=False)


def interpolate(text: str, values: Mapping[str, Any]) -> str:
    return _REF.sub(lambda m: card_string(values.get(m.group(1), "")), text)


def references(text: str) -> set[str]:
    return set(_REF.findall(text))


# ---- conditions -------------------------------------------------------------------------

@dataclass(frozen=True)
class Condition:
    """A 可见性 / 请求成功判定条件 expression over the card's variables (values are strings)."""

    op: str                                 # a comparison, or "all" / "any" / "not"
    var: str = ""
    value: Any = None
    parts: tuple["Condition", ...] = ()

    def test(self, values: Mapping[str, str]) -> bool:
        if self.op == "all":
            return all(p.test(values) for p in self.parts)
        if self.op == "any":
            return any(p.test(values) for p in self.parts)
        if self.op == "not":
            return not self.parts[0].test(values)
        actual = values.get(self.var, "")
        if self.op == "empty":
            return actual == ""
        if self.op == "notEmpty":
            return actual != ""
        if self.op in ("in", "notIn"):
            found = actual in {card_string(v) for v in self.value}
            return found if self.op == "in" else not found
        if self.op in ("==", "!="):
            same = actual == card_string(self.value)
            return same if self.op == "==" else not same
        try:
            left, right = float(actual), float(self.value)
        except (TypeError, ValueError):
            return False        # a number comparison on a non-number is simply false
        return {">": left > right, ">=": left >= right, "<": left < right, "<=": left <= right}[self.op]

    def variables(self) -> set[str]:
        names = {self.var} if self.var else set()
        for part in self.parts:
            names |= part.variables()
        return names

    @classmethod
    def parse(cls, raw: Any, where: str) -> "Condition":
        if not isinstance(raw, dict):
            raise CardTemplateError(f"{where}: a condition is a JSON object")
        for combinator in ("all", "any"):
            if combinator in raw:
                items = raw[combinator]
                if not isinstance(items, list) or not items:
                    raise CardTemplateError(f"{where}: '{combinator}' needs a non-empty list of conditions")
                return cls(combinator, parts=tuple(cls.parse(i, where) for i in items))
        if "not" in raw:
            return cls("not", parts=(cls.parse(raw["not"], where),))
        var, op = raw.get("var"), raw.get("op", "==")
        if not isinstance(var, str) or not _NAME.match(var):
            raise CardTemplateError(f"{where}: a condition needs 'var' (a variable name)")
        if op not in COMPARISONS:
            raise CardTemplateError(f"{where}: unknown op {op!r}; use one of {', '.join(COMPARISONS)}")
        value = raw.get("value")
        if op in ("in", "notIn") and not isinstance(value, list):
            raise CardTemplateError(f"{where}: '{op}' needs a list 'value'")
        if op in ("==", "!=", ">", ">=", "<", "<=") and value is None:
            raise CardTemplateError(f"{where}: '{op}' needs a 'value'")
        return cls(op, var, value)


def _visible(condition: Condition | None, values: Mapping[str, str]) -> bool:
    return condition is None or condition.test(values)


# ---- parts of a definition --------------------------------------------------------------

@dataclass(frozen=True)
class Variable:
    name: str
    type: str
    private: bool = False
    description: str = ""

    def problem(self, value: str) -> str | None:
        """Why a value does not fit the declared type (the real client then ignores it), or None."""
        if self.type == "number":
            try:
                float(value)
            except ValueError:
                return f"{value!r} is not a number"
        elif self.type == "boolean" and value not in ("true", "false"):
            return f"{value!r} is not \"true\" or \"false\""
        elif self.type in ("array", "object"):
            try:
                parsed = json.loads(value)
            except ValueError:
                return f"{value!r} is not a JSON {self.type}"
            if not isinstance(parsed, list if self.type == "array" else dict):
                return f"{value!r} is not a JSON {self.type}"
        return None


@dataclass(frozen=True)
class Field:
    label: str
    value: str
    visible: Condition | None = None


@dataclass(frozen=True)
class ListBlock:
    title: str
    items: str                  # an array variable
    text: str | None            # per item: ${key} of an object item; None shows the item itself
    empty: str | None           # shown when the list is empty; None hides the block
    visible: Condition | None = None


@dataclass(frozen=True)
class Layout:
    title: str
    status_text: str | None = None
    status_color: str = "blue"
    body: str | None = None     # markdown
    fields: tuple[Field, ...] = ()
    lists: tuple[ListBlock, ...] = ()


@dataclass(frozen=True)
class Input:
    id: str
    label: str
    placeholder: str = ""
    required: bool = False
    multiline: bool = False
    max_length: int = 500
    visible: Condition | None = None


@dataclass(frozen=True)
class ParamSource:
    """One 回传参数: a constant, a card variable, or what the user typed into an input."""

    kind: str                   # "const", "var", "input"
    value: Any

    def resolve(self, values: Mapping[str, str], inputs: Mapping[str, str]) -> Any:
        if self.kind == "var":
            return values.get(self.value, "")
        if self.kind == "input":
            return inputs.get(self.value, "")
        return self.value


@dataclass(frozen=True)
class Button:
    id: str                     # the component id set in the builder: callback actionIds[0]
    text: str
    style: str = "normal"
    visible: Condition | None = None
    disabled: Condition | None = None
    params: tuple[tuple[str, ParamSource], ...] = ()
    success_when: Condition | None = None
    success_toast: str = DEFAULT_SUCCESS_TOAST
    failure_toast: str = DEFAULT_FAILURE_TOAST

    @property
    def input_ids(self) -> list[str]:
        return [source.value for _, source in self.params if source.kind == "input"]


@dataclass(frozen=True)
class Link:
    text: str
    url: str
    visible: Condition | None = None


# ---- the template -----------------------------------------------------------------------

@dataclass
class CardTemplate:
    name: str
    title: str
    kind: str
    template_ids: dict[str, str]
    published: bool
    variables: dict[str, Variable]
    layout: Layout
    inputs: tuple[Input, ...] = ()
    buttons: tuple[Button, ...] = ()
    links: tuple[Link, ...] = ()
    close_button: str | None = None
    path: Path | None = field(default=None, repr=False)

    def button(self, button_id: str) -> Button | None:
        return next((b for b in self.buttons if b.id == button_id), None)

    def input(self, input_id: str) -> Input | None:
        return next((i for i in self.inputs if i.id == input_id), None)

    # ---- data checks (warnings: the real platform accepts the call and ignores the value) ----
    def check_value(self, key: str, value: str, *, private: bool) -> tuple[str | None, bool]:
        """(warning or None, keep): private values for public variables are dropped (P2 §1.3)."""
        variable = self.variables.get(key)
        if variable is None:
            return f"key {key!r} is not a variable of template {self.name}", True
        if private and not variable.private:
            return (f"private value for {key!r}, which template {self.name} does not mark private "
                    f"(私有): ignored"), False
        problem = variable.problem(value)
        if problem:
            return f"{key!r} is declared {variable.type}, but {problem}: the client ignores it", True
        return None, True

    # ---- rendering ----------------------------------------------------------------
    def render(self, values: Mapping[str, str]) -> dict[str, Any]:
        """What a user whose merged data is `values` sees (the web page draws this)."""
        layout = self.layout
        status = None
        if layout.status_text is not None:
            text = interpolate(layout.status_text, values)
            colour = interpolate(layout.status_color, values)
            status = {"text": text, "color": colour if colour in COLOURS else "grey"} if text else None
        lists = []
        for block in layout.lists:
            if not _visible(block.visible, values):
                continue
            items = _list_items(values.get(block.items, ""), block.text)
            if items or block.empty is not None:
                lists.append({"title": interpolate(block.title, values), "items": items,
                              "empty": block.empty or ""})
        return {
            "title": interpolate(layout.title, values),
            "status": status,
            "body": interpolate(layout.body, values) if layout.body else "",
            "fields": [{"label": interpolate(f.label, values), "value": interpolate(f.value, values)}
                       for f in layout.fields if _visible(f.visible, values)],
            "lists": lists,
            "inputs": [{"id": i.id, "label": i.label, "placeholder": i.placeholder, "required": i.required,
                        "multiline": i.multiline, "maxLength": i.max_length}
                       for i in self.inputs if _visible(i.visible, values)],
            "buttons": [{"id": b.id, "text": interpolate(b.text, values), "style": b.style,
                         "disabled": bool(b.disabled and b.disabled.test(values)),
                         "close": b.id == self.close_button}
                        for b in self.buttons if _visible(b.visible, values)],
            "links": [{"text": interpolate(link.text, values), "url": interpolate(link.url, values)}
                      for link in self.links if _visible(link.visible, values)],
        }

    @staticmethod
    def callback_params(button: Button, values: Mapping[str, str], inputs: Mapping[str, str]) -> dict[str, Any]:
        return {name: source.resolve(values, inputs) for name, source in button.params}


def _list_items(raw: str, text: str | None) -> list[str]:
    try:
        items = json.loads(raw) if raw else []
    except ValueError:
        return []
    if not isinstance(items, list):
        return []
    shown = []
    for item in items:
        if isinstance(item, dict):
            shown.append(interpolate(text, item) if text else " · ".join(card_string(v) for v in item.values()))
        else:
            shown.append(card_string(item))
    return shown


# ---- loading ----------------------------------------------------------------------------

def _text(raw: dict, key: str, where: str, *, required: bool = True, default: str = "") -> str:
    value = raw.get(key)
    if value is None:
        if required:
            raise CardTemplateError(f"{where}: '{key}' is required")
        return default
    if not isinstance(value, str):
        raise CardTemplateError(f"{where}: '{key}' must be a string")
    return value


def _objects(raw: dict, key: str, where: str) -> Iterator[tuple[str, dict]]:
    """(position, object) for each entry of a list of objects."""
    items = raw.get(key, [])
    if not isinstance(items, list):
        raise CardTemplateError(f"{where}: '{key}' must be a list")
    for i, item in enumerate(items):
        at = f"{where}.{key}[{i}]"
        if not isinstance(item, dict):
            raise CardTemplateError(f"{at}: must be an object")
        yield at, item


def _param_source(raw: Any, where: str) -> ParamSource:
    if isinstance(raw, dict):
        if set(raw) == {"var"} and isinstance(raw["var"], str):
            return ParamSource("var", raw["var"])
        if set(raw) == {"input"} and isinstance(raw["input"], str):
            return ParamSource("input", raw["input"])
        if set(raw) == {"const"}:
            return ParamSource("const", raw["const"])
        raise CardTemplateError(f"{where}: a parameter is a constant, {{\"var\": name}}, {{\"input\": id}} "
                                "or {\"const\": value}")
    return ParamSource("const", raw)


class _Parser:
    """Reads one definition; every text and condition may only name declared variables."""

    def __init__(self, where: str):
        self.where = where
        self.variables: dict[str, Variable] = {}

    def check_text(self, text: str | None, at: str) -> None:
        unknown = references(text or "") - set(self.variables)
        if unknown:
            raise CardTemplateError(f"{at}: unknown variable(s) {', '.join(sorted(unknown))}")

    def condition(self, raw: dict, key: str, at: str) -> Condition | None:
        if raw.get(key) is None:
            return None
        condition = Condition.parse(raw[key], f"{at}.{key}")
        unknown = condition.variables() - set(self.variables)
        if unknown:
            raise CardTemplateError(f"{at}.{key}: unknown variable(s) {', '.join(sorted(unknown))}")
        return condition

    def parse_variables(self, raw: dict) -> None:
        for at, item in _objects(raw, "variables", self.where):
            name = _text(item, "name", at)
            if not _NAME.match(name) or name in self.variables:
                raise CardTemplateError(f"{at}: 'name' must be a new identifier, got {name!r}")
            var_type = item.get("type", "string")
            if var_type not in VARIABLE_TYPES:
                raise CardTemplateError(f"{at}: 'type' must be one of {', '.join(VARIABLE_TYPES)}")
            self.variables[name] = Variable(name, var_type, bool(item.get("private", False)),
                                            _text(item, "description", at, required=False))

    def parse_layout(self, raw: dict) -> Layout:
        layout = raw.get("layout")
        at = f"{self.where}.layout"
        if not isinstance(layout, dict):
            raise CardTemplateError(f"{at}: required (at least a title)")
        status_text, status_color = None, "blue"
        status = layout.get("status")
        if status is not None:
            if not isinstance(status, dict):
                raise CardTemplateError(f"{at}.status: must be an object {{text, color}}")
            status_text = _text(status, "text", f"{at}.status")
            status_color = _text(status, "color", f"{at}.status", required=False, default="blue")
            if status_color not in COLOURS and not references(status_color):
                raise CardTemplateError(f"{at}.status.color: one of {', '.join(COLOURS)} or a ${{variable}}")
            self.check_text(status_text + status_color, f"{at}.status")
        fields = []
        for f_at, item in _objects(layout, "fields", at):
            fields.append(Field(_text(item, "label", f_at), _text(item, "value", f_at),
                                self.condition(item, "visibleWhen", f_at)))
            self.check_text(fields[-1].label + fields[-1].value, f_at)
        lists = []
        for l_at, item in _objects(layout, "lists", at):
            items = _text(item, "items", l_at)
            if items not in self.variables or self.variables[items].type != "array":
                raise CardTemplateError(f"{l_at}: 'items' must name an array variable")
            lists.append(ListBlock(_text(item, "title", l_at), items, item.get("text"), item.get("empty"),
                                   self.condition(item, "visibleWhen", l_at)))
            self.check_text(lists[-1].title, l_at)
        result = Layout(_text(layout, "title", at), status_text, status_color,
                        _text(layout, "body", at, required=False) or None, tuple(fields), tuple(lists))
        self.check_text(result.title, f"{at}.title")
        self.check_text(result.body, f"{at}.body")
        return result

    def parse_inputs(self, raw: dict) -> tuple[Input, ...]:
        inputs: list[Input] = []
        for at, item in _objects(raw, "inputs", self.where):
            input_id = _text(item, "id", at)
            if not _NAME.match(input_id) or any(x.id == input_id for x in inputs):
                raise CardTemplateError(f"{at}: 'id' must be a new identifier, got {input_id!r}")
            max_length = item.get("maxLength", 500)
            if not isinstance(max_length, int) or max_length < 1:
                raise CardTemplateError(f"{at}: 'maxLength' must be a positive integer")
            inputs.append(Input(input_id, _text(item, "label", at), _text(item, "placeholder", at, required=False),
                                bool(item.get("required", False)), bool(item.get("multiline", False)), max_length,
                                self.condition(item, "visibleWhen", at)))
        return tuple(inputs)

    def parse_buttons(self, raw: dict, inputs: tuple[Input, ...]) -> tuple[Button, ...]:
        buttons: list[Button] = []
        for at, item in _objects(raw, "buttons", self.where):
            button_id = _text(item, "id", at)
            if not button_id or any(b.id == button_id for b in buttons):
                raise CardTemplateError(f"{at}: 'id' must be unique, got {button_id!r}")
            style = item.get("style", "normal")
            if style not in BUTTON_STYLES:
                raise CardTemplateError(f"{at}: 'style' must be one of {', '.join(BUTTON_STYLES)}")
            params_raw = item.get("params", {})
            if not isinstance(params_raw, dict):
                raise CardTemplateError(f"{at}: 'params' must be an object (the 回传参数)")
            params = tuple((key, _param_source(value, f"{at}.params.{key}")) for key, value in params_raw.items())
            for key, source in params:
                if source.kind == "var" and source.value not in self.variables:
                    raise CardTemplateError(f"{at}.params.{key}: unknown variable {source.value!r}")
                if source.kind == "input" and all(i.id != source.value for i in inputs):
                    raise CardTemplateError(f"{at}.params.{key}: unknown input {source.value!r}")
            buttons.append(Button(
                button_id, _text(item, "text", at), style, self.condition(item, "visibleWhen", at),
                self.condition(item, "disabledWhen", at), params, self.condition(item, "successWhen", at),
                _text(item, "successToast", at, required=False, default=DEFAULT_SUCCESS_TOAST),
                _text(item, "failureToast", at, required=False, default=DEFAULT_FAILURE_TOAST)))
            self.check_text(buttons[-1].text, f"{at}.text")
        return tuple(buttons)

    def parse_links(self, raw: dict) -> tuple[Link, ...]:
        links = []
        for at, item in _objects(raw, "links", self.where):
            links.append(Link(_text(item, "text", at), _text(item, "url", at), self.condition(item, "visibleWhen", at)))
            self.check_text(links[-1].text + links[-1].url, at)
        return tuple(links)


def parse_template(raw: Any, *, path: Path | None = None) -> CardTemplate:
    where = str(path) if path else "card definition"
    if not isinstance(raw, dict):
        raise CardTemplateError(f"{where}: the file must hold a JSON object")
    if raw.get("format") != FORMAT:
        raise CardTemplateError(f"{where}: 'format' must be {FORMAT!r}")
    name = _text(raw, "name", where)
    if not _NAME.match(name):
        raise CardTemplateError(f"{where}: 'name' must be an identifier (letters, digits, _)")
    if path is not None and path.stem != name:
        raise CardTemplateError(f"{where}: 'name' ({name}) must equal the file name ({path.stem})")
    kind = raw.get("kind", "message")
    if kind not in KINDS:
        raise CardTemplateError(f"{where}: 'kind' must be one of {', '.join(KINDS)}")
    ids = raw.get("templateIds")
    if not isinstance(ids, dict) or not all(isinstance(k, str) and isinstance(v, str) for k, v in ids.items()):
        raise CardTemplateError(f"{where}: 'templateIds' maps environment names to template ids (strings)")
    parser = _Parser(where)
    parser.parse_variables(raw)
    layout = parser.parse_layout(raw)
    inputs = parser.parse_inputs(raw)
    buttons = parser.parse_buttons(raw, inputs)
    close_button = raw.get("closeButton")
    if close_button is not None and all(b.id != close_button for b in buttons):
        raise CardTemplateError(f"{where}: 'closeButton' must name one of the buttons")
    return CardTemplate(name, _text(raw, "title", where), kind, dict(ids), bool(raw.get("published", True)),
                        parser.variables, layout, inputs, buttons, parser.parse_links(raw), close_button, path)


@dataclass
class CardCatalog:
    """The templates the emulator knows, by the id of one environment."""

    by_id: dict[str, CardTemplate] = field(default_factory=dict)
    directory: Path | None = None
    environment: str = "sandbox"
    unregistered: list[str] = field(default_factory=list)   # definitions without an id for this environment

    @property
    def strict(self) -> bool:
        """With a directory loaded, unknown template ids are refused (param.templateNotExist)."""
        return self.directory is not None

    def get(self, template_id: str) -> CardTemplate | None:
        return self.by_id.get(template_id)

    @classmethod
    def load(cls, directory: str | Path | None, environment: str = "sandbox") -> "CardCatalog":
        if directory is None:
            return cls(environment=environment)
        root = Path(directory)
        if not root.is_dir():
            raise CardTemplateError(f"card templates directory {root} does not exist")
        catalog = cls(directory=root, environment=environment)
        for path in sorted(root.glob("*.json")):
            try:
                raw = json.loads(path.read_text(encoding="utf-8"))
            except ValueError as exc:
                raise CardTemplateError(f"{path}: not valid JSON ({exc})") from None
            catalog.add(parse_template(raw, path=path))
        return catalog

    def add(self, template: CardTemplate) -> None:
        template_id = template.template_ids.get(self.environment)
        if not template_id:
            self.unregistered.append(template.name)     # not built for this environment yet
            return
        other = self.by_id.get(template_id)
        if other is not None:
            raise CardTemplateError(f"template id {template_id} is used by both {other.name} and {template.name}")
        self.by_id[template_id] = template

    def templates(self) -> Iterable[CardTemplate]:
        return self.by_id.values()
