"""A plain WSGI application (standard library only) served by IIS through isapi.wsgi.

The application knows nothing of ISAPI: the last two lines make this script an ISAPI
extension. Routes (below wherever the application is mounted):
  GET  /            a greeting
  GET  /where       SCRIPT_NAME, PATH_INFO and the query string the application sees
  POST /upload      the size and SHA-256 of the body, read in pieces from wsgi.input
  anything else     404
"""

import hashlib

from isapi.wsgi import factory


def application(environ, start_response):
    method = environ["REQUEST_METHOD"]
    path = environ.get("PATH_INFO", "")
    if method == "GET" and path in ("", "/"):
        return text(start_response, "200 OK", "Hello from a WSGI application under ISAPI.\n")
    if method == "GET" and path == "/where":
        return text(
            start_response,
            "200 OK",
            f"SCRIPT_NAME: {environ['SCRIPT_NAME']}\n"
            f"PATH_INFO: {path}\n"
            f"QUERY_STRING: {environ.get('QUERY_STRING', '')}\n",
        )
    if method == "POST" and path == "/upload":
        digest = hashlib.sha256()
        size = 0
        body = environ["wsgi.input"]
        while True:
            piece = body.read(64 * 1024)
            if not piece:
                break
            digest.update(piece)
            size += len(piece)
        return text(start_response, "200 OK", f"received {size} bytes, sha256 {digest.hexdigest()}\n")
    return text(start_response, "404 Not Found", f"no such page: {method} {path}\n")


def text(start_response, status, body):
    data = body.encode("utf-8")
    start_response(status, [("Content-Type", "text/plain; charset=utf-8"), ("Content-Length", str(len(data)))])
    return [data]


__ExtensionFactory__ = factory(application)
