"""A route class whose JSON request bodies are parsed by orjson, and the prediction routes'
JSON responses.

A 1000-row columnar batch is ~40 kB of JSON: the standard library's parser took ~1 ms of it,
orjson about a third. orjson refuses what the standard library accepts beyond strict JSON
(NaN and Infinity literals, integers beyond 64 bits); such bodies are parsed again by the
standard library, so the schema still answers them with the same field-named 422, and a body
that is not JSON at all still raises json.JSONDecodeError, which FastAPI turns into a 422.

The prediction routes answer with ``json_response``: FastAPI's validation and encoding of a
returned dict against the route's response_model cost ~15 us per request, more than the
ONNX prediction. The declared models are still what they return: tests/api/test_openapi_fuzz.py
checks every real response against its schema.
"""

import json
from collections.abc import Callable, Coroutine
from typing import Any

import orjson
from fastapi import Request, Response
from fastapi.routing import APIRoute

from app.api.deps import REQUEST_ID_HEADER


def json_response(content: Any, request_id: str) -> Response:
    """``content`` (dicts, lists, str, int, finite floats) as a JSON response that names the
    request id."""
    return Response(
        orjson.dumps(content),
        media_type="application/json",
        headers={REQUEST_ID_HEADER: request_id},
    )


class OrjsonRequest(Request):
    async def json(self) -> Any:
        if not hasattr(self, "_json"):
            body = await self.body()
            try:
                self._json = orjson.loads(body)
            except orjson.JSONDecodeError:
                self._json = json.loads(body)
        return self._json


class OrjsonRoute(APIRoute):
    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def parse_with_orjson(request: Request) -> Response:
            return await handler(OrjsonRequest(request.scope, request.receive))

        return parse_with_orjson
