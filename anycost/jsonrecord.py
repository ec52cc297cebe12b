"""Versioned JSON records: every config anycost saves as JSON is an object with a "version" and named fields.

`loads_object` and `check_record` give the one-line errors every reader of such a record owes its user.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import fields


def loads_object(text: str, what: str) -> dict:
    """The JSON object in `text`; a ValueError naming `what` when `text` is not JSON or not an object."""
    try:
        data = json.loads(text)
    except json.JSONDecodeError as err:
        raise ValueError(f"not valid {what} JSON: {err}") from None
    if not isinstance(data, dict):
        raise ValueError(f"a {what} must be a JSON object, got {type(data).__name__}")
    return data


def check_record(data, what: str, version: int, required: Iterable[str] = ()) -> dict:
    """`data` as a record of `what`: a dict whose "version" is `version` and which has the `required` keys."""
    if not isinstance(data, dict):
        raise ValueError(f"a {what} must be a JSON object, got {type(data).__name__}")
    if data.get("version") != version:
        raise ValueError(f"unsupported {what} version {data.get('version')!r} (this anycost reads {version})")
    missing = sorted(set(required) - set(data))
    if missing:
        raise ValueError(f"{what} JSON lacks {missing}")
    return data


def check_fields(data, cls, what: str) -> dict:
    """`data` as the fields of the dataclass `cls`: a dict naming no field `cls` lacks (a ValueError names them)."""
    if not isinstance(data, dict):
        raise ValueError(f"a {what} must be a JSON object, got {type(data).__name__}")
    unknown = sorted(set(data) - {f.name for f in fields(cls)})
    if unknown:
        raise ValueError(f"unknown {what} fields: {unknown}")
    return data
