"""The OpenAPI 3.0.3 document, generated with apispec from the route table.

Each handler method decorated with `endpoint(...)` contributes one operation, tagged
with its handler module (accounts, catalog, ...); its pydantic models become component
schemas. Pydantic emits JSON Schema 2020-12 (OpenAPI 3.1 style), so schemas are lowered
to 3.0 (`nullable`, no `const`), which the bundled Swagger UI 4 renders.
"""

from __future__ import annotations

import re
import sys
from http import HTTPStatus
from typing import Any

from apispec import APISpec
from pydantic import BaseModel
from pydantic.json_schema import GenerateJsonSchema, JsonSchemaValue, models_json_schema
from pydantic_core import core_schema

from handlers.endpoints import Operation, RequestHeader, operation_of
from schemas.common import ErrorOut

HTTP_METHODS = ("get", "post", "put", "patch", "delete")
REF_TEMPLATE = "#/components/schemas/{model}"
_GROUP = re.compile(r"\(\?P<(\w+)>([^)]*)\)")
_ID_GROUP = re.compile(r"\[0-9\]\{1,(\d+)\}")
# The error codes (docs/api.md, Errors) behind each error status an operation may answer.
ERROR_CODES = {
    400: "`validation_error` (with `fields`), `invalid_json`, or `cart_empty` at checkout",
    401: "`not_authenticated`, `invalid_credentials` or `token_expired`",
    403: "`permission_denied` or `email_not_verified`",
    404: "`not_found`",
    409: "`conflict` or `insufficient_stock`",
    413: "`payload_too_large`: the body is over MAX_BODY_SIZE",
    429: "`rate_limited`: try again after Retry-After seconds",
    503: "`service_unavailable` (the database does not answer; with Retry-After), "
    "or `payments_unavailable` where payments are involved",
}
# A character that request models' stripping keeps: pydantic strips Unicode White_Space
# (not the \x1c-\x1f separators that Python's str.isspace() also counts).
VISIBLE_CHARACTER = r"[^\t-\r\x20\x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]"
# Request strings never hold a NUL byte (RequestModel refuses it).
WITHOUT_NUL = r"^[^\x00]*$"
# Both: no NUL, and at least one character that stripping keeps.
VISIBLE_WITHOUT_NUL = (
    r"^[^\x00]*[^\x00\t-\r\x20\x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000][^\x00]*$"
)
RETRY_AFTER = {
    "Retry-After": {"description": "Seconds to wait before retrying", "schema": {"type": "integer"}}
}


class StrippedStringsJsonSchema(GenerateJsonSchema):
    """Pydantic's JSON Schema, plus what stripping implies: a string whose surrounding
    whitespace is stripped before its length is checked (request bodies strip) must hold
    a visible character to be non-empty."""

    def str_schema(self, schema: core_schema.StringSchema) -> JsonSchemaValue:
        json_schema = super().str_schema(schema)
        # `_config` is the config of the model being described (pydantic keeps a stack).
        stripped = schema.get("strip_whitespace", self._config.str_strip_whitespace)
        if stripped and "pattern" not in json_schema:
            # Request models strip (RequestModel), and refuse NUL bytes.
            visible = json_schema.get("minLength", 0) >= 1
            json_schema["pattern"] = VISIBLE_WITHOUT_NUL if visible else WITHOUT_NUL
        return json_schema


def build_spec(routes: list[tuple[str, type, str]], *, title: str, version: str) -> dict[str, Any]:
    spec = APISpec(title=title, version=version, openapi_version="3.0.3")
    spec.components.security_scheme(
        "bearerAuth", {"type": "http", "scheme": "bearer", "bearerFormat": "JWT"}
    )
    operations = [
        (pattern, method, op)
        for pattern, handler, _name in routes
        for method in HTTP_METHODS
        if (op := operation_of(getattr(handler, method, None))) is not None
    ]
    refs = _register_schemas(spec, operations)
    tags: set[str] = set()
    for pattern, (tag, handler_ops) in _group_by_path(routes, operations).items():
        path, params = _path_template(pattern)
        tags.add(tag)
        spec.path(
            path=path,
            operations={
                method: {"tags": [tag], **_operation(op, params, refs)}
                for method, op in handler_ops.items()
            },
        )
    for name in sorted(tags):
        spec.tag(_tag(name))
    return spec.to_dict()


def _register_schemas(
    spec: APISpec, operations: list[tuple[str, str, Operation]]
) -> dict[tuple[type[BaseModel], str], dict[str, Any]]:
    """Add every body/response model (and what they reference) to the components."""
    wanted: set[tuple[type[BaseModel], Any]] = {(ErrorOut, "serialization")}
    for _pattern, _method, op in operations:
        if op.body is not None:
            wanted.add((op.body, "validation"))
        if op.response is not None:
            wanted.add((op.response, "serialization"))
    keyed, definitions = models_json_schema(
        sorted(wanted, key=lambda pair: (pair[0].__name__, pair[1])),
        ref_template=REF_TEMPLATE,
        schema_generator=StrippedStringsJsonSchema,
    )
    for name, schema in sorted(definitions.get("$defs", {}).items()):
        spec.components.schema(name, to_openapi30(schema))
    return {
        (model, mode): to_openapi30(schema)  # type: ignore[misc]
        for (model, mode), schema in keyed.items()
    }


def _group_by_path(
    routes: list[tuple[str, type, str]], operations: list[tuple[str, str, Operation]]
) -> dict[str, tuple[str, dict[str, Operation]]]:
    """Each path's tag (its handler module's name) and operations by method."""
    tags = {pattern: handler.__module__.rpartition(".")[2] for pattern, handler, _name in routes}
    grouped: dict[str, tuple[str, dict[str, Operation]]] = {}
    for pattern, method, op in operations:
        grouped.setdefault(pattern, (tags[pattern], {}))[1][method] = op
    return grouped


def _tag(name: str) -> dict[str, str]:
    """The tag of the handler module `handlers.<name>`, described by its docstring."""
    summary = (sys.modules[f"handlers.{name}"].__doc__ or name).split("\n\n")[0]
    return {"name": name, "description": " ".join(summary.split())}


def _path_template(pattern: str) -> tuple[str, list[dict[str, Any]]]:
    """`/products/(?P<slug>[^/]+)` -> (`/products/{slug}`, [the `slug` parameter]): each
    path parameter matches its route group's pattern (anything else is a 404)."""
    params = [
        {"name": name, "in": "path", "required": True, "schema": _path_schema(group)}
        for name, group in _GROUP.findall(pattern)
    ]
    return _GROUP.sub(lambda m: "{" + m.group(1) + "}", pattern).rstrip("$"), params


def _path_schema(group: str) -> dict[str, Any]:
    """An id group (`[0-9]{1,18}`) is an integer of up to that many digits."""
    if digits := _ID_GROUP.fullmatch(group):
        return {"type": "integer", "minimum": 0, "maximum": 10 ** int(digits.group(1)) - 1}
    return {"type": "string", "pattern": f"^{group}$"}


def _operation(
    op: Operation,
    path_params: list[dict[str, Any]],
    refs: dict[tuple[type[BaseModel], str], dict[str, Any]],
) -> dict[str, Any]:
    parameters = list(path_params)
    if op.query is not None:
        parameters += _query_parameters(op.query)
    parameters += [_header_parameter(header) for header in op.headers]
    responses: dict[str, Any] = {}
    for status in (op.status, *op.also):
        responses[str(status)] = {"description": HTTPStatus(status).phrase}
        if op.response is not None:
            schema = refs[(op.response, "serialization")]
            responses[str(status)]["content"] = {op.media_type: {"schema": schema}}
        elif op.media_type != "application/json":
            responses[str(status)]["content"] = {op.media_type: {"schema": {"type": "string"}}}
    error_schema = refs[(ErrorOut, "serialization")]
    for status in sorted(_error_statuses(op) - {op.status, *op.also}):
        responses[str(status)] = {
            "description": f"{HTTPStatus(status).phrase}: {ERROR_CODES[status]}",
            "content": {"application/json": {"schema": error_schema}},
        }
        if status in (429, 503):
            responses[str(status)]["headers"] = RETRY_AFTER
    operation: dict[str, Any] = {
        "summary": op.summary,
        "responses": dict(sorted(responses.items())),
    }
    if parameters:
        operation["parameters"] = parameters
    if op.body is not None:
        operation["requestBody"] = {
            # A body whose every field has a default may be left out (POST orders/{id}/pay).
            "required": any(field.is_required() for field in op.body.model_fields.values()),
            "content": {"application/json": {"schema": refs[(op.body, "validation")]}},
        }
    if op.auth:
        operation["security"] = [{"bearerAuth": []}]
    return operation


def _error_statuses(op: Operation) -> set[int]:
    """What `op` may answer besides success: its own errors, and those every request
    can meet (a bad Authorization header, a body too large, the database away)."""
    statuses = {*op.errors, 401, 503}
    if op.auth == "staff":
        statuses.add(403)
    if op.body is not None:
        statuses |= {400, 413}
    if op.query is not None:
        statuses.add(400)
    return statuses


def _query_parameters(model: type[BaseModel]) -> list[dict[str, Any]]:
    """A query string cannot carry null: an optional parameter is one left out."""
    schema = to_openapi30(
        model.model_json_schema(
            ref_template=REF_TEMPLATE, schema_generator=StrippedStringsJsonSchema
        )
    )
    required = set(schema.get("required", []))
    parameters = []
    for name, prop in schema.get("properties", {}).items():
        prop = {
            key: value
            for key, value in prop.items()
            if key != "nullable" and not (key == "default" and value is None)
        }
        if prop.get("type") == "string" and "pattern" not in prop and "enum" not in prop:
            # Every query argument holding a NUL byte is refused (BaseHandler).
            prop["pattern"] = WITHOUT_NUL
        parameters.append(
            {"name": name, "in": "query", "required": name in required, "schema": prop}
        )
    return parameters


def _header_parameter(header: RequestHeader) -> dict[str, Any]:
    # Values are stripped, and blank ones refused like missing ones.
    schema: dict[str, Any] = {"type": "string", "minLength": 1, "pattern": VISIBLE_CHARACTER}
    if header.max_length is not None:
        schema["maxLength"] = header.max_length
    return {
        "name": header.name,
        "in": "header",
        "required": header.required,
        "description": header.description,
        "schema": schema,
    }


def to_openapi30(schema: Any) -> Any:
    """Lower a JSON Schema 2020-12 fragment to the OpenAPI 3.0 dialect."""
    if isinstance(schema, list):
        return [to_openapi30(item) for item in schema]
    if not isinstance(schema, dict):
        return schema
    result = {key: to_openapi30(value) for key, value in schema.items() if key != "$defs"}
    # 3.0 has no patternProperties: a dict's values become additionalProperties.
    patterned = result.pop("patternProperties", None)
    if isinstance(patterned, dict) and len(patterned) == 1:
        result["additionalProperties"] = next(iter(patterned.values()))
    variants = result.get("anyOf")
    if isinstance(variants, list) and {"type": "null"} in variants:
        rest = [v for v in variants if v != {"type": "null"}]
        del result["anyOf"]
        if len(rest) == 1 and "$ref" not in rest[0]:
            result.update(rest[0])
        else:
            result["anyOf" if len(rest) > 1 else "allOf"] = rest
        result["nullable"] = True
    if "const" in result:
        result["enum"] = [result.pop("const")]
    if "examples" in result:
        examples = result.pop("examples")
        if isinstance(examples, list) and examples:
            result["example"] = examples[0]
    for bound, flag in (("exclusiveMinimum", "minimum"), ("exclusiveMaximum", "maximum")):
        if isinstance(result.get(bound), int | float) and not isinstance(result[bound], bool):
            result[flag] = result[bound]
            result[bound] = True
    if "$ref" in result and len(result) > 1:
        ref = result.pop("$ref")
        result["allOf"] = [{"$ref": ref}]
    return result
