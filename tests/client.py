"""A small JSON client over the test server, addressing routes by name."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from tornado.httpclient import HTTPResponse
from tornado.web import Application


@dataclass
class Response:
    status: int
    headers: Any
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)

    @property
    def error_code(self) -> str:
        return str(self.json()["error"]["code"])


class ApiClient:
    def __init__(self, http_client: Any, app: Application) -> None:
        self.http = http_client
        self.app = app

    def url(self, route: str, *args: Any) -> str:
        """A route name (`"auth:login"`) becomes its path; a path is kept as it is."""
        return route if route.startswith("/") else self.app.reverse_url(route, *args)

    async def request(
        self,
        method: str,
        route: str,
        *args: Any,
        json_body: Any = None,
        body: bytes | str | None = None,
        token: str | None = None,
        headers: dict[str, str] | None = None,
        query: str = "",
    ) -> Response:
        all_headers = {"Content-Type": "application/json", **(headers or {})}
        if token is not None:
            all_headers["Authorization"] = f"Bearer {token}"
        if json_body is not None:
            body = json.dumps(json_body)
        if body is None and method in {"POST", "PATCH", "PUT"}:
            body = b""
        path = self.url(route, *args) + (f"?{query}" if query else "")
        response: HTTPResponse = await self.http.fetch(
            path, method=method, body=body, headers=all_headers, raise_error=False
        )
        return Response(response.code, response.headers, response.body or b"")

    async def get(self, route: str, *args: Any, **kwargs: Any) -> Response:
        return await self.request("GET", route, *args, **kwargs)

    async def post(self, route: str, *args: Any, json: Any = None, **kwargs: Any) -> Response:
        return await self.request("POST", route, *args, json_body=json, **kwargs)

    async def patch(self, route: str, *args: Any, json: Any = None, **kwargs: Any) -> Response:
        return await self.request("PATCH", route, *args, json_body=json, **kwargs)

    async def put(self, route: str, *args: Any, json: Any = None, **kwargs: Any) -> Response:
        return await self.request("PUT", route, *args, json_body=json, **kwargs)

    async def delete(self, route: str, *args: Any, **kwargs: Any) -> Response:
        return await self.request("DELETE", route, *args, **kwargs)
