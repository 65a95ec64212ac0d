"""Tools: schemas from type hints, argument validation, effects and compensations."""

from __future__ import annotations

from typing import Annotated, Any, Literal

import pytest
from pydantic import BaseModel, Field

from soloist.errors import DeterministicError
from soloist.execution.context import ToolCall
from soloist.execution.tools.base import Tool, ToolCompensation, ToolRegistry, spec_of, tool
from soloist.execution.tools.builtins import BUILTINS, builtin_registry
from soloist.execution.tools.http import NAME as HTTP
from soloist.execution.tools.http import http_effect

CALL = ToolCall("run-1", "step-1", "run-1/step-1/0", "/tmp")


class Line(BaseModel):
    sku: str
    qty: int = 1


class Order(BaseModel):
    customer: str
    lines: list[Line]


UNDO = {"id": "{{ result.id }}", "why": "undo {{ args.order.customer }}"}


@tool("shop.order", effect="write", idempotent=True, tags=("money", "external"),
      compensate=("shop.cancel", UNDO))
def place_order(
    order: Order,
    note: str | None = None,
    priority: Literal["low", "high"] = "low",
    labels: list[str] | None = None,
    extra: dict[str, int] | None = None,
    discount: Annotated[float, Field(ge=0, le=1, description="a fraction")] = 0.0,
    call: ToolCall | None = None,
) -> dict[str, Any]:
    """Place an order.

    The rest of the docstring is not the description.
    """
    return {"id": f"o-{order.customer}", "lines": len(order.lines), "note": note,
            "priority": priority, "labels": labels, "key": call.idempotency_key if call else None,
            "order_is_model": isinstance(order, Order), "discount": discount}


@tool("shop.cancel", effect="write", idempotent=True)
def cancel(id: str, why: str = "") -> Line:
    """Cancel an order."""
    return Line(sku=id, qty=0)


SPEC = spec_of(place_order)


def test_schema_comes_from_the_type_hints() -> None:
    schema = SPEC.args_schema
    assert schema["title"] == "shop.order"
    assert schema["description"] == "Place an order."
    assert schema["type"] == "object" and schema["additionalProperties"] is False
    assert schema["required"] == ["order"]  # defaults make fields optional
    props = schema["properties"]
    assert set(props) == {"order", "note", "priority", "labels", "extra", "discount"}
    assert "call" not in props  # the ToolCall is not an argument
    assert props["order"] == {"$ref": "#/$defs/Order"}
    assert schema["$defs"]["Order"]["properties"]["lines"]["items"] == {"$ref": "#/$defs/Line"}
    assert props["note"]["anyOf"] == [{"type": "string"}, {"type": "null"}]
    assert props["priority"]["enum"] == ["low", "high"] and props["priority"]["default"] == "low"
    assert props["labels"]["anyOf"][0] == {"items": {"type": "string"}, "type": "array"}
    assert props["extra"]["anyOf"][0] == {"additionalProperties": {"type": "integer"},
                                          "type": "object"}
    assert props["discount"]["maximum"] == 1 and props["discount"]["description"] == "a fraction"
    assert SPEC.result_schema == {"additionalProperties": True, "type": "object"}
    assert spec_of(cancel).result_schema is not None
    assert spec_of(cancel).result_schema["title"] == "Line"  # type: ignore[index]


def test_declaration_is_kept() -> None:
    assert (SPEC.name, SPEC.effect, SPEC.idempotent, SPEC.tags) == (
        "shop.order", "write", True, ("money", "external"))
    assert SPEC.description == "Place an order."
    assert SPEC.compensate == ToolCompensation(
        "shop.cancel", {"id": "{{ result.id }}", "why": "undo {{ args.order.customer }}"})
    described = SPEC.describe()
    assert described["compensate"]["tool"] == "shop.cancel"
    assert described["input_schema"] is SPEC.args_schema


def test_compensation_arguments_render_over_args_and_result() -> None:
    assert SPEC.compensate is not None
    got = SPEC.compensate.arguments({"order": {"customer": "acme"}}, {"id": "o-7"})
    assert got == {"id": "o-7", "why": "undo acme"}


def test_a_broken_compensation_template_fails_at_declaration() -> None:
    with pytest.raises(TypeError, match="compensation template"):
        tool("x", compensate=("y", {"id": "{{ result.id "}))(lambda: None)


def test_valid_arguments_are_converted_and_call_is_passed() -> None:
    result = SPEC.invoke({"order": {"customer": "acme", "lines": [{"sku": "a"}, {"sku": "b"}]},
                          "priority": "high", "discount": "0.5"}, CALL)
    assert result == {"id": "o-acme", "lines": 2, "note": None, "priority": "high",
                      "labels": None, "key": "run-1/step-1/0", "order_is_model": True,
                      "discount": 0.5}
    # A pydantic model as a result is returned as JSON data.
    assert spec_of(cancel).invoke({"id": "o-1"}, CALL) == {"sku": "o-1", "qty": 0}


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ({}, "tool shop.order is missing the required argument 'order'."),
        ({"order": {"customer": "a", "lines": []}, "colour": "red"},
         "tool shop.order got an unexpected argument 'colour'."),
        ({"order": {"customer": "a", "lines": [{"sku": "x", "qty": "many"}]}},
         "tool shop.order got an invalid argument 'order.lines[0].qty': input should be a "
         "valid integer, unable to parse string as an integer (got 'many')."),
        ({"order": {"customer": "a", "lines": []}, "priority": "urgent"},
         "tool shop.order got an invalid argument 'priority': input should be 'low' or "
         "'high' (got 'urgent')."),
        ({"order": {"customer": "a", "lines": []}, "discount": 2},
         "tool shop.order got an invalid argument 'discount': input should be less than or "
         "equal to 1 (got 2)."),
        ({"order": "nope", "labels": "x"},
         "tool shop.order got an invalid argument 'order': input should be a valid "
         "dictionary or instance of Order (got 'nope') (and 1 more problem)."),
        ({"order": {"customer": "a", "lines": []}, "call": "mine"},
         "tool shop.order got an unexpected argument 'call'."),
    ],
)
def test_invalid_arguments_fail_deterministically_naming_the_field(
    args: dict[str, Any], message: str
) -> None:
    with pytest.raises(DeterministicError) as caught:
        SPEC.invoke(args, CALL)
    assert caught.value.message == message


def test_arguments_must_be_a_mapping() -> None:
    with pytest.raises(DeterministicError, match="as a mapping, not list"):
        SPEC.invoke(["acme"], CALL)  # type: ignore[arg-type]


def test_positional_construction_and_kwargs_still_work() -> None:
    def free(a: int, **rest: Any) -> dict[str, Any]:
        return {"a": a, **rest}

    spec = Tool("free", free, "write", True, "anything goes", ("t",))
    assert (spec.effect, spec.idempotent, spec.description, spec.tags) == (
        "write", True, "anything goes", ("t",))
    assert spec.args_schema["additionalProperties"] is True
    assert spec.invoke({"a": "3", "b": [1]}, CALL) == {"a": 3, "b": [1]}
    assert hash(spec) == hash(Tool("free", free, "write", True, "anything goes", ("t",)))


def test_names_that_shadow_basemodel_attributes_are_fine() -> None:
    def odd(json: dict[str, Any], schema: str = "s", copy: bool = False) -> list[Any]:
        return [json, schema, copy]

    spec = Tool("odd", odd)
    assert set(spec.args_schema["properties"]) == {"json", "schema", "copy"}
    assert spec.invoke({"json": {"a": 1}, "copy": True}, CALL) == [{"a": 1}, "s", True]


def test_an_unannotated_parameter_takes_anything() -> None:
    def loose(x, y: int = 1):  # type: ignore[no-untyped-def]
        return [x, y]

    spec = Tool("loose", loose)
    assert spec.args_schema["required"] == ["x"]
    assert spec.invoke({"x": {"any": "thing"}}, CALL) == [{"any": "thing"}, 1]


def test_an_explicit_json_schema_is_checked_with_jsonschema() -> None:
    schema = {"type": "object", "properties": {"n": {"type": "integer"}}, "required": ["n"],
              "additionalProperties": False}
    spec = Tool("remote", lambda **kw: kw, args_schema=schema)
    assert spec.args_schema == schema
    assert spec.invoke({"n": 2}, CALL) == {"n": 2}
    with pytest.raises(DeterministicError, match="tool remote got an invalid argument 'n'"):
        spec.invoke({"n": "2"}, CALL)
    with pytest.raises(DeterministicError, match="tool remote got invalid arguments: 'n' is"):
        spec.invoke({}, CALL)
    with pytest.raises(TypeError, match="invalid args_schema"):
        Tool("bad", lambda: None, args_schema={"type": "nonsense"})


def test_an_unsupported_annotation_fails_at_declaration() -> None:
    class Opaque:
        pass

    def takes(thing: Opaque) -> None:
        return None

    with pytest.raises(TypeError, match="tool takes: cannot"):
        Tool("takes", takes)
    with pytest.raises(TypeError, match="effect must be"):
        Tool("x", lambda: None, "delete")  # type: ignore[arg-type]


def test_http_request_effect_depends_on_the_method() -> None:
    spec = builtin_registry().get(HTTP)
    assert spec.effect == "write"  # a caller that ignores effect_of stages every request
    assert spec.effect_of is http_effect
    assert spec.effect_for({"url": "http://x"}) == "read"  # GET by default
    for method in ("GET", "get", "HEAD", "head"):  # any case
        assert spec.effect_for({"url": "http://x", "method": method}) == "read"
    odd: tuple[Any, ...] = ("POST", "put", "PATCH", "DELETE", "OPTIONS", "BREW", 3, None)
    for other in odd:
        assert spec.effect_for({"url": "http://x", "method": other}) == "write"
    assert spec.describe()["effect_depends_on_args"] is True
    assert spec.args_schema["properties"]["method"]["enum"][:2] == ["GET", "HEAD"]
    assert "call" not in spec.args_schema["properties"]


def test_effect_for_fails_towards_write() -> None:
    def broken(args: Any) -> Any:
        raise KeyError("method")

    assert Tool("x", lambda: None, "read", effect_of=broken).effect_for({}) == "write"
    def unsure(args: Any) -> Any:
        return "maybe"

    assert Tool("x", lambda: None, "read", effect_of=unsure).effect_for({}) == "write"
    assert Tool("x", lambda: None, "read").effect_for({"method": "POST"}) == "read"


def test_builtins_are_registered_with_schemas() -> None:
    registry = builtin_registry()
    assert {"sleep", "note", "file.append", "time.now", HTTP} <= set(registry.tools)
    assert {spec.name for spec in BUILTINS} == set(registry.tools)
    assert registry.problems() == []
    for spec in registry.tools.values():
        assert spec.args_schema["type"] == "object" and spec.description


def test_time_now() -> None:
    spec = builtin_registry().get("time.now")
    assert spec.effect == "read"
    utc = spec.invoke({}, CALL)
    assert utc["timezone"] == "UTC" and utc["iso"] == utc["utc"]
    assert utc["utc"].endswith("+00:00") and isinstance(utc["epoch"], float)
    tokyo = spec.invoke({"timezone": "Asia/Tokyo"}, CALL)
    assert tokyo["iso"].endswith("+09:00") and tokyo["timezone"] == "Asia/Tokyo"
    with pytest.raises(DeterministicError, match="does not know the time zone 'Mars/Base'"):
        spec.invoke({"timezone": "Mars/Base"}, CALL)
    with pytest.raises(DeterministicError, match="'timezone'"):
        spec.invoke({"timezone": 5}, CALL)


def test_registry_reports_missing_compensating_tools() -> None:
    registry = ToolRegistry()
    registry.add(SPEC)
    assert registry.problems() == [
        "tool shop.order is compensated by shop.cancel, which is not a tool"]
    registry.add(spec_of(cancel))
    assert registry.problems() == []
