"""A plain ASGI hello (no framework) through isapi.asgi: the ASGI twin of
examples/wsgi/wsgi_hello.py's greeting, to set the server's own cost against isapi.wsgi's."""

from isapi.asgi import factory

BODY = b"Hello from an ASGI application under ISAPI.\n"
HEADERS = [(b"content-type", b"text/plain; charset=utf-8"), (b"content-length", str(len(BODY)).encode())]


async def app(scope, receive, send):
    if scope["type"] != "http":
        return
    await send({"type": "http.response.start", "status": 200, "headers": HEADERS})
    await send({"type": "http.response.body", "body": BODY})


__ExtensionFactory__ = factory(app, lifespan="off")
