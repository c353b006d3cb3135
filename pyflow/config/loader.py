"""Read a pipeline config: JSON syntax, then the JSON Schema, then semantics."""
from __future__ import annotations

import json
import os
from functools import cache
from importlib import resources
from pathlib import Path

import jsonschema
import jsonschema_rs

from ..errors import ConfigError
from .errors_util import join_path, suggest

_JSON_TYPES = {dict: "an object", list: "an array", str: "a string", bool: "a boolean",
               int: "an integer", float: "a number", type(None): "null"}


def schema_path() -> Path:
    """conf/schema.json, installed as pyflow/data/schema.json; the source tree's copy otherwise."""
    try:
        installed = resources.files("pyflow") / "data" / "schema.json"
        if installed.is_file():
            return Path(str(installed))
    except (ModuleNotFoundError, FileNotFoundError):
        pass
    return Path(__file__).resolve().parents[2] / "conf" / "schema.json"


@cache
def load_schema() -> dict:
    with open(schema_path()) as f:
        return json.load(f)


def read_json(path_or_dict) -> tuple[dict, str | None]:
    if isinstance(path_or_dict, dict):
        return path_or_dict, None
    path = os.fspath(path_or_dict)
    try:
        with open(path, encoding="utf-8") as f:
            text = f.read()
    except FileNotFoundError:
        raise ConfigError("", f"config file {path!r} does not exist") from None
    except (IsADirectoryError, PermissionError, UnicodeDecodeError) as exc:
        raise ConfigError("", f"cannot read config file {path!r}: {exc}") from None
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ConfigError("", f"{path}:{exc.lineno}:{exc.colno}: invalid JSON: {exc.msg}") from None
    if not isinstance(data, dict):
        raise ConfigError("", f"{path}: the config must be a JSON object, got {_JSON_TYPES.get(type(data), 'a value')}")
    return data, path


def _path_of(parts) -> str:
    return join_path("", *parts)


def _doc_order(err) -> tuple:
    return tuple((0, p, "") if isinstance(p, int) else (1, 0, p) for p in err.absolute_path)


def _describe_error(err) -> ConfigError:
    """One clear message for a schema error: where, what was expected, and a hint for typos."""
    path = _path_of(err.absolute_path)
    kind, inst, schema = err.validator, err.instance, err.schema
    if "propertyNames" in err.relative_schema_path:
        key = inst
        names = schema.get("enum", [])
        return ConfigError(join_path(path, key), f"unknown field {key!r}{suggest(key, names)}")
    if kind == "additionalProperties":
        allowed = list(schema.get("properties", {}))
        extra = sorted(k for k in inst if k not in allowed)
        key = extra[0]
        return ConfigError(join_path(path, key),
                           f"unknown key {key!r}{suggest(key, allowed)}; expected one of: {', '.join(allowed)}")
    if kind == "required":
        missing = [k for k in err.validator_value if k not in inst]
        return ConfigError(path, f"missing required key {missing[0]!r}")
    if kind == "enum":
        choices = err.validator_value
        return ConfigError(path, f"expected one of {', '.join(map(str, choices))}; got {inst!r}{suggest(inst, choices)}")
    if kind == "type":
        want = err.validator_value
        want = " or ".join(want) if isinstance(want, list) else want
        return ConfigError(path, f"expected {want}, got {_JSON_TYPES.get(type(inst), 'a value')} {json.dumps(inst)}")
    if kind == "pattern":
        return ConfigError(path, f"expected {schema.get('x-expected', 'a value matching ' + err.validator_value)}, got {inst!r}")
    if kind in ("minimum", "maximum"):
        bound = ">=" if kind == "minimum" else "<="
        return ConfigError(path, f"expected a value {bound} {err.validator_value}, got {inst!r}")
    if kind in ("minItems", "maxItems"):
        bound = "at least" if kind == "minItems" else "at most"
        return ConfigError(path, f"expected {bound} {err.validator_value} items, got {len(inst)}")
    if kind in ("minLength", "maxLength"):
        bound = "at least" if kind == "minLength" else "at most"
        return ConfigError(path, f"expected {bound} {err.validator_value} characters, got {len(inst)}")
    if kind == "uniqueItems":
        seen = set()
        dup = next((json.dumps(x) for x in inst if json.dumps(x) in seen or seen.add(json.dumps(x))), "?")
        return ConfigError(path, f"duplicate item {dup}")
    if kind in ("anyOf", "oneOf") and err.context:
        # the alternative that got furthest tells the user the most
        deeper = [e for e in err.context if len(e.absolute_path) > len(err.absolute_path)]
        if deeper:
            return _describe_error(min(deeper, key=lambda e: (-len(e.absolute_path), _doc_order(e))))
        same_type = [e for e in err.context if e.validator not in ("type", "$ref") and
                     not (e.validator == "enum" and not isinstance(inst, str))]
        if same_type and isinstance(inst, (dict, list, str)):
            return _describe_error(same_type[0])
        forms = schema.get("description") or "a valid value"
        return ConfigError(path, f"expected {forms}, got {json.dumps(inst)}")
    return ConfigError(path, err.message)


@cache
def _validator() -> jsonschema.Draft202012Validator:
    return jsonschema.Draft202012Validator(load_schema())


@cache
def _fast_validator():
    return jsonschema_rs.validator_for(load_schema())


def check_schema(data: dict) -> None:
    # A valid document (the common case, and every runtime entry batch) is checked by the compiled
    # validator, ~1000x faster; only an invalid one is walked again to say where and what.
    if _fast_validator().is_valid(data):
        return
    errors = sorted(_validator().iter_errors(data), key=_doc_order)
    if errors:
        raise _describe_error(errors[0])


def load_config(path_or_dict):
    """Load and validate a pipeline config (a path or an already parsed dict)."""
    from .semantic import build_config

    data, source = read_json(path_or_dict)
    check_schema(data)
    return build_config(data, source)
