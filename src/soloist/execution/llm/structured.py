"""Structured output: checking a model's JSON reply against a schema, and asking for a fix.

The agent loop calls :func:`parse_json_output` on ``ChatResponse.text``; when it raises
:class:`InvalidOutput`, it may append the reply and a user message with
:func:`repair_prompt` and try again, a bounded number of times, before failing the step
with the same (deterministic) error.
"""

from __future__ import annotations

import json
import re
from typing import Any

import jsonschema
from jsonschema.exceptions import SchemaError

from soloist import jsonvalues
from soloist.errors import DeterministicError, InputError, InvalidOutput

_FENCE = re.compile(r"^\s*```[A-Za-z0-9_-]*\s*\n(?P<body>.*?)\n?\s*```\s*$", re.DOTALL)
_MAX_PROBLEMS = 5


def _strip_fence(text: str) -> str:
    match = _FENCE.match(text)
    return match.group("body") if match else text.strip()


def _path(parts: Any) -> str:
    out = "$"
    for part in parts:
        out += f"[{part}]" if isinstance(part, int) else f".{part}"
    return out


def parse_json_output(text: str, schema: dict[str, Any] | None) -> Any:
    """The JSON value in ``text``, checked against ``schema`` (no check when ``None``).

    A single surrounding Markdown code fence is tolerated. Raises :class:`InvalidOutput`
    (a :class:`~soloist.errors.DeterministicError`) when the text is not JSON or the value
    does not match, and :class:`DeterministicError` when the schema itself is invalid.
    """
    body = _strip_fence(text)
    try:
        value = jsonvalues.loads(body, "the reply")
    except json.JSONDecodeError as exc:
        problem = f"not valid JSON: {exc.msg} at line {exc.lineno} column {exc.colno}"
        raise InvalidOutput(f"the model's reply is {problem}", [problem], text) from None
    except InputError as exc:  # NaN, Infinity, 1e999: repaired like any other bad reply
        raise InvalidOutput(f"the model's reply is not valid JSON: {exc}", [str(exc)],
                            text) from None
    if schema is None:
        return value
    try:
        validator_class = jsonschema.validators.validator_for(schema)
        validator_class.check_schema(schema)
    except SchemaError as exc:
        raise DeterministicError(f"the response schema is invalid: {exc.message}") from None
    validator = validator_class(schema)
    errors = sorted(validator.iter_errors(value), key=lambda e: (list(e.absolute_path),
                                                                 e.message))
    if not errors:
        return value
    problems = [f"{_path(e.absolute_path)}: {e.message}" for e in errors[:_MAX_PROBLEMS]]
    if len(errors) > _MAX_PROBLEMS:
        problems.append(f"... and {len(errors) - _MAX_PROBLEMS} more problem(s)")
    more = f" (and {len(errors) - 1} more problem(s))" if len(errors) > 1 else ""
    raise InvalidOutput(f"the model's reply does not match the schema: {problems[0]}{more}",
                        problems, text)


def schema_instructions(schema: dict[str, Any]) -> str:
    """Instructions asking for a reply that is only a JSON document matching ``schema``."""
    return ("Reply with only a JSON document (no prose, no code fence) that matches this "
            "JSON schema:\n" + json.dumps(schema, indent=2, sort_keys=True))


def repair_prompt(error: BaseException | str) -> str:
    """The user message that asks the model to correct an invalid structured reply."""
    if isinstance(error, InvalidOutput):
        details = "\n".join(f"- {problem}" for problem in error.problems)
    else:
        details = f"- {error}"
    return ("Your previous reply could not be used:\n" + details + "\n"
            "Reply again with only the corrected JSON document (no prose, no code fence), "
            "matching the requested schema.")
