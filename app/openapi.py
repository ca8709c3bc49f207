"""The OpenAPI 3.0.3 document, generated with apispec from the route table.

Each handler method decorated with `endpoint(...)` contributes one operation; its
pydantic models become component schemas. Pydantic emits JSON Schema 2020-12
(OpenAPI 3.1 style), so schemas are lowered to 3.0 (`nullable`, no `const`),
which the bundled Swagger UI 4 renders.
"""

from __future__ import annotations

import re
from http import HTTPStatus
from typing import Any

from apispec import APISpec
from pydantic import BaseModel
from pydantic.json_schema import models_json_schema

from app.schemas.common import ErrorOut
from handlers.base import Operation

HTTP_METHODS = ("get", "post", "put", "patch", "delete")
REF_TEMPLATE = "#/components/schemas/{model}"
_GROUP = re.compile(r"\(\?P<(\w+)>[^)]*\)")


def build_spec(routes: list[tuple[str, type, str]], *, title: str, version: str) -> dict[str, Any]:
    spec = APISpec(title=title, version=version, openapi_version="3.0.3")
    spec.components.security_scheme(
        "bearerAuth", {"type": "http", "scheme": "bearer", "bearerFormat": "JWT"}
    )
    operations = [
        (pattern, method, op)
        for pattern, handler, _name in routes
        for method in HTTP_METHODS
        if (op := getattr(getattr(handler, method, None), "operation", None)) is not None
    ]
    refs = _register_schemas(spec, operations)
    for pattern, handler_ops in _group_by_path(operations).items():
        path, params = _path_template(pattern)
        spec.path(
            path=path,
            operations={method: _operation(op, params, refs) for method, op in handler_ops.items()},
        )
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
        sorted(wanted, key=lambda pair: (pair[0].__name__, pair[1])), ref_template=REF_TEMPLATE
    )
    for name, schema in sorted(definitions.get("$defs", {}).items()):
        spec.components.schema(name, to_openapi30(schema))
    return {
        (model, mode): to_openapi30(schema)  # type: ignore[misc]
        for (model, mode), schema in keyed.items()
    }


def _group_by_path(
    operations: list[tuple[str, str, Operation]],
) -> dict[str, dict[str, Operation]]:
    grouped: dict[str, dict[str, Operation]] = {}
    for pattern, method, op in operations:
        grouped.setdefault(pattern, {})[method] = op
    return grouped


def _path_template(pattern: str) -> tuple[str, list[str]]:
    """`/products/(?P<slug>[^/]+)` -> (`/products/{slug}`, ["slug"])."""
    params = _GROUP.findall(pattern)
    return _GROUP.sub(lambda m: "{" + m.group(1) + "}", pattern).rstrip("$"), params


def _operation(
    op: Operation, path_params: list[str], refs: dict[tuple[type[BaseModel], str], dict[str, Any]]
) -> dict[str, Any]:
    parameters = [
        {"name": name, "in": "path", "required": True, "schema": {"type": "string"}}
        for name in path_params
    ]
    if op.query is not None:
        parameters += _query_parameters(op.query)
    success: dict[str, Any] = {"description": HTTPStatus(op.status).phrase}
    if op.response is not None:
        success["content"] = {"application/json": {"schema": refs[(op.response, "serialization")]}}
    responses: dict[str, Any] = {str(op.status): success}
    error_statuses = set(op.errors)
    if op.auth:
        error_statuses.add(401)
    if op.auth == "staff":
        error_statuses.add(403)
    error_schema = refs[(ErrorOut, "serialization")]
    for status in sorted(error_statuses):
        responses[str(status)] = {
            "description": HTTPStatus(status).phrase,
            "content": {"application/json": {"schema": error_schema}},
        }
    operation: dict[str, Any] = {"summary": op.summary, "responses": responses}
    if parameters:
        operation["parameters"] = parameters
    if op.body is not None:
        operation["requestBody"] = {
            "required": True,
            "content": {"application/json": {"schema": refs[(op.body, "validation")]}},
        }
    if op.auth:
        operation["security"] = [{"bearerAuth": []}]
    return operation


def _query_parameters(model: type[BaseModel]) -> list[dict[str, Any]]:
    schema = to_openapi30(model.model_json_schema(ref_template=REF_TEMPLATE))
    required = set(schema.get("required", []))
    return [
        {"name": name, "in": "query", "required": name in required, "schema": prop}
        for name, prop in schema.get("properties", {}).items()
    ]


def to_openapi30(schema: Any) -> Any:
    """Lower a JSON Schema 2020-12 fragment to the OpenAPI 3.0 dialect."""
    if isinstance(schema, list):
        return [to_openapi30(item) for item in schema]
    if not isinstance(schema, dict):
        return schema
    result = {key: to_openapi30(value) for key, value in schema.items() if key != "$defs"}
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
