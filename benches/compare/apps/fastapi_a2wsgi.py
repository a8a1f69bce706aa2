"""FastAPI hello (fastapi_hello.py) through a2wsgi's ASGI-to-WSGI bridge on isapi.wsgi: how
FastAPI runs under an ISAPI WSGI adapter without isapi.asgi."""

from a2wsgi import ASGIMiddleware
from fastapi_hello import app

from isapi.wsgi import factory

__ExtensionFactory__ = factory(ASGIMiddleware(app))
