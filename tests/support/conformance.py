"""Checking a payload against GitHub's REST description, as githubkit generates it."""

from __future__ import annotations

import json
from typing import Any

from pydantic import BaseModel, TypeAdapter


def conforms(described: Any, payload: Any) -> None:
    """``payload`` is what GitHub's REST description (API version 2022-11-28, as githubkit
    generates it) says: every required field, JSON types exactly (strict: no "1" for 1),
    and no field the description does not have."""
    parsed = TypeAdapter(described).validate_json(json.dumps(payload), strict=True)
    unknown = _undescribed(parsed, payload, "$")
    assert not unknown, f"fields GitHub does not describe: {unknown}"


def _undescribed(parsed: Any, payload: Any, where: str) -> list[str]:
    if isinstance(parsed, list):
        return [
            found
            for n, (item, raw) in enumerate(zip(parsed, payload, strict=True))
            for found in _undescribed(item, raw, f"{where}[{n}]")
        ]
    if not isinstance(parsed, BaseModel) or parsed.model_config.get("extra") == "allow":
        return []  # a free-form object (a gist's files) has any keys
    fields = type(parsed).model_fields
    names = {field.alias or name: name for name, field in fields.items()}
    found = [f"{where}.{key}" for key in payload if key not in names]
    for key, name in names.items():
        if key in payload:
            found += _undescribed(getattr(parsed, name), payload[key], f"{where}.{key}")
    return found
