"""Bodies above MAX_BODY_BYTES get a 413, with or without a proxy in front: a declared
Content-Length before a byte is read, a chunked body as it arrives. The HTTPException reaches
the app's error handler, so the 413 has the protocol's JSON body (Starlette's own limit
answers plain text)."""

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app.errors import body_too_large


class BodySizeLimit:
    def __init__(self, app: ASGIApp, max_body_bytes: int) -> None:
        self.app = app
        self.max_body_bytes = max_body_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = self.max_body_bytes
        declared = dict(scope["headers"]).get(b"content-length", b"")
        received = int(declared) if declared.isdigit() else 0

        async def receive_within_limit() -> Message:
            nonlocal received
            if received > limit:
                raise body_too_large(limit)
            message = await receive()
            if not declared.isdigit():
                received += len(message.get("body", b""))
                if received > limit:
                    raise body_too_large(limit)
            return message

        await self.app(scope, receive_within_limit, send)
