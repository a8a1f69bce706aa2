"""FastAPI hello (fastapi_hello.py) served natively by isapi.asgi."""

from fastapi_hello import app

from isapi.asgi import factory

__ExtensionFactory__ = factory(app)
