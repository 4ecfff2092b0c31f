"""The card definition format (`dingpm-card/1`): loading, checks with clear messages, conditions, rendering."""

from __future__ import annotations

import json

import pytest
from card_helpers import CARDS_DIR

from sandbox.card_templates import CardCatalog, CardTemplateError, Condition, parse_template


def definition(**changes) -> dict:
    base = {
        "format": "dingpm-card/1", "name": "sample", "title": "示例", "templateIds": {"sandbox": "sample.schema"},
        "variables": [{"name": "status", "type": "string"}, {"name": "count", "type": "number"},
                      {"name": "items", "type": "array"}, {"name": "mine", "type": "boolean", "private": True}],
        "layout": {"title": "标题 ${status}", "fields": [{"label": "数量", "value": "${count}"}],
                   "lists": [{"title": "清单", "items": "items", "text": "${name}"}]},
        "inputs": [{"id": "note", "label": "备注"}],
        "buttons": [{"id": "go", "text": "去", "params": {"note": {"input": "note"}, "s": {"var": "status"}}}],
    }
    base.update(changes)
    return base


def test_the_example_definitions_load():
    catalog = CardCatalog.load(CARDS_DIR)
    assert sorted(t.name for t in catalog.templates()) == ["overdue_reminder", "project_status", "weekly_report"]
    assert catalog.get("sandbox-weekly-report.schema").variables["summary"].type == "markdown"
    assert catalog.get("sandbox-project-status.schema").close_button == "close"
    # Another environment registers other ids; definitions without one are listed.
    production = CardCatalog.load(CARDS_DIR, "production")
    assert production.by_id == {} and sorted(production.unregistered) == [
        "overdue_reminder", "project_status", "weekly_report"]


@pytest.mark.parametrize("change, message", [
    ({"format": "v2"}, "'format' must be 'dingpm-card/1'"),
    ({"name": "other"}, "must equal the file name"),
    ({"kind": "popup"}, "'kind' must be one of"),
    ({"templateIds": "x.schema"}, "'templateIds' maps environment names"),
    ({"variables": [{"name": "a", "type": "date"}]}, "'type' must be one of"),
    ({"variables": [{"name": "a"}, {"name": "a"}]}, "must be a new identifier"),
    ({"layout": {"title": "${nope}"}}, "layout.title: unknown variable(s) nope"),
    ({"layout": {"title": "t", "body": "${gone}"}}, "layout.body: unknown variable(s) gone"),
    ({"layout": {"title": "t", "status": {"text": "x", "color": "purple"}}}, "one of blue, green"),
    ({"layout": {"title": "t", "lists": [{"title": "l", "items": "status"}]}}, "must name an array variable"),
    ({"layout": {"title": "t", "fields": [{"label": "a", "value": "b",
                                           "visibleWhen": {"var": "ghost", "op": "empty"}}]}}, "unknown variable(s) ghost"),
    ({"buttons": [{"id": "go", "text": "去", "visibleWhen": {"var": "status", "op": "~="}}]}, "unknown op '~='"),
    ({"buttons": [{"id": "go", "text": "去", "visibleWhen": {"var": "status", "op": "=="}}]}, "'==' needs a 'value'"),
    ({"buttons": [{"id": "go", "text": "去", "visibleWhen": {"var": "status", "op": "in", "value": "a"}}]},
     "'in' needs a list"),
    ({"buttons": [{"id": "go", "text": "去", "params": {"x": {"input": "nope"}}}]}, "unknown input 'nope'"),
    ({"buttons": [{"id": "go", "text": "去", "params": {"x": {"var": "nope"}}}]}, "unknown variable 'nope'"),
    ({"buttons": [{"id": "go", "text": "去", "params": {"x": {"what": 1}}}]}, "a parameter is a constant"),
    ({"buttons": [{"id": "go", "text": "去"}, {"id": "go", "text": "再去"}]}, "'id' must be unique"),
    ({"buttons": [{"id": "go", "text": "去", "style": "huge"}]}, "'style' must be one of"),
    ({"closeButton": "nope"}, "'closeButton' must name one of the buttons"),
    ({"inputs": [{"id": "note", "label": "备注", "maxLength": 0}]}, "'maxLength' must be a positive integer"),
])
def test_malformed_definitions_are_refused_with_the_reason(tmp_path, change, message):
    path = tmp_path / "sample.json"
    path.write_text(json.dumps(definition(**change)), encoding="utf-8")
    with pytest.raises(CardTemplateError) as caught:
        CardCatalog.load(tmp_path)
    assert message in str(caught.value) and str(path) in str(caught.value)


def test_directory_level_errors(tmp_path):
    with pytest.raises(CardTemplateError, match="does not exist"):
        CardCatalog.load(tmp_path / "missing")
    (tmp_path / "a.json").write_text("{not json")
    with pytest.raises(CardTemplateError, match="not valid JSON"):
        CardCatalog.load(tmp_path)
    (tmp_path / "a.json").write_text(json.dumps(definition(name="a")))
    (tmp_path / "b.json").write_text(json.dumps(definition(name="b")))
    with pytest.raises(CardTemplateError, match="used by both a and b"):
        CardCatalog.load(tmp_path)


@pytest.mark.parametrize("raw, values, expected", [
    ({"var": "s", "op": "==", "value": ""}, {}, True),
    ({"var": "s", "op": "==", "value": "x"}, {"s": "x"}, True),
    ({"var": "s", "op": "!=", "value": "x"}, {"s": "x"}, False),
    ({"var": "b", "op": "==", "value": True}, {"b": "true"}, True),
    ({"var": "n", "op": ">", "value": 2}, {"n": "3"}, True),
    ({"var": "n", "op": "<=", "value": 2}, {"n": "3"}, False),
    ({"var": "n", "op": ">", "value": 2}, {"n": "三"}, False),
    ({"var": "s", "op": "in", "value": ["a", "b"]}, {"s": "b"}, True),
    ({"var": "s", "op": "notIn", "value": ["a", "b"]}, {"s": "b"}, False),
    ({"var": "s", "op": "empty"}, {"s": ""}, True),
    ({"var": "s", "op": "notEmpty"}, {"s": ""}, False),
    ({"all": [{"var": "a", "op": "notEmpty"}, {"var": "b", "op": "==", "value": "1"}]}, {"a": "x", "b": "1"}, True),
    ({"any": [{"var": "a", "op": "notEmpty"}, {"var": "b", "op": "==", "value": "1"}]}, {}, False),
    ({"not": {"var": "a", "op": "empty"}}, {"a": "x"}, True),
])
def test_conditions(raw, values, expected):
    assert Condition.parse(raw, "test").test(values) is expected


def test_rendering_follows_the_data_as_the_user_sees_it():
    template = parse_template(definition(layout={
        "title": "${status}", "status": {"text": "${status}", "color": "${colour}"},
        "fields": [{"label": "数量", "value": "${count} 个", "visibleWhen": {"var": "count", "op": "notEmpty"}}],
        "lists": [{"title": "对象", "items": "items", "text": "${name}/${owner}"},
                  {"title": "原样", "items": "plain"}, {"title": "空", "items": "items2", "empty": "暂无"}]},
        variables=[{"name": n, "type": t} for n, t in [("status", "string"), ("colour", "string"), ("count", "number"),
                                                        ("items", "array"), ("plain", "array"), ("items2", "array")]],
        inputs=[], buttons=[]))
    shown = template.render({"status": "逾期", "colour": "magenta", "items": '[{"name":"A","owner":"李明"}]',
                             "plain": '["x", 2]', "items2": "[]"})
    assert shown["title"] == "逾期" and shown["status"] == {"text": "逾期", "color": "grey"}   # unknown colour
    assert shown["fields"] == []                                                            # count is empty
    assert shown["lists"] == [{"title": "对象", "items": ["A/李明"], "empty": ""},
                              {"title": "原样", "items": ["x", "2"], "empty": ""},
                              {"title": "空", "items": [], "empty": "暂无"}]
    assert template.render({"status": ""})["status"] is None                             # no text, no tag


def test_params_come_from_constants_variables_and_inputs():
    template = parse_template(definition(buttons=[{"id": "go", "text": "去", "params": {
        "action": "go", "n": 3, "list": {"const": ["a"]}, "s": {"var": "status"}, "note": {"input": "note"}}}]))
    params = template.callback_params(template.button("go"), {"status": "ok"}, {"note": "备注文字"})
    assert params == {"action": "go", "n": 3, "list": ["a"], "s": "ok", "note": "备注文字"}


def test_checking_values_against_the_declared_variables():
    template = parse_template(definition())
    assert template.check_value("status", "x", private=False) == (None, True)
    assert template.check_value("count", "x", private=False)[0] == \
        "'count' is declared number, but 'x' is not a number: the client ignores it"
    assert template.check_value("items", "{}", private=False)[0].startswith("'items' is declared array")
    assert template.check_value("mine", "yes", private=True)[0].startswith("'mine' is declared boolean")
    warning, keep = template.check_value("status", "x", private=True)
    assert "does not mark private" in warning and keep is False
    assert template.check_value("extra", "x", private=False) == (
        "key 'extra' is not a variable of template sample", True)



def test_the_readme_worked_example_is_the_tested_definition():
    readme = (CARDS_DIR.parents[2] / "sandbox" / "README.md").read_text(encoding="utf-8")
    example = readme.split("Worked example", 1)[1].split("```json", 1)[1].split("```", 1)[0]
    shipped = json.loads((CARDS_DIR / "weekly_report.json").read_text(encoding="utf-8"))
    assert json.loads(example) == shipped
    assert parse_template(json.loads(example)).button("ask").input_ids == ["question"]
