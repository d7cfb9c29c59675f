"""The bare ASGI floor: no framework, read the whole body, answer a constant JSON.

Served by the same uvicorn + uvloop + httptools stack as the FastAPI floor, so the gap
between the two floors is what FastAPI (routing, validation of the request model, the
response model) costs and this floor alone is what the HTTP server costs. The answer is the
FastAPI floor's, byte for byte.
"""

CONSTANT_ANSWER = (
    b'{"model":"svm","model_version":"'
    + b"0" * 64
    + b'","species_id":1,"species_name":"Adelie","probabilities":null,"runtime":"onnx"}'
)
RESPONSE_START = {
    "type": "http.response.start",
    "status": 200,
    "headers": [
        (b"content-type", b"application/json"),
        (b"content-length", str(len(CONSTANT_ANSWER)).encode()),
    ],
}
RESPONSE_BODY = {"type": "http.response.body", "body": CONSTANT_ANSWER}


async def app(scope, receive, send) -> None:
    if scope["type"] == "lifespan":
        while (await receive())["type"] != "lifespan.shutdown":
            await send({"type": "lifespan.startup.complete"})
        await send({"type": "lifespan.shutdown.complete"})
        return
    more_body = True
    while more_body:
        more_body = (await receive()).get("more_body", False)
    await send(RESPONSE_START)
    await send(RESPONSE_BODY)
