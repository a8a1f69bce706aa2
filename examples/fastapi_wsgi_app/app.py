"""A FastAPI app on IIS: FastAPI speaks ASGI, and a2wsgi's ASGIMiddleware makes it the WSGI
application isapi.wsgi serves. Sync and async routes, path and query parameters, a JSON
body checked by pydantic, and the installed versions read with importlib.metadata.
"""

import asyncio
import importlib.metadata

from a2wsgi import ASGIMiddleware
from fastapi import FastAPI
from pydantic import BaseModel

import isapi.wsgi

app = FastAPI()


class Item(BaseModel):
    name: str
    price: float


@app.get("/items/{item_id}")
def read_item(item_id: int, q: str | None = None):
    # A plain function: FastAPI runs it on a worker thread (anyio's).
    return {"item_id": item_id, "q": q}


@app.post("/items")
async def create_item(item: Item):
    await asyncio.sleep(0)
    return {"name": item.name, "price_with_tax": round(item.price * 1.2, 2)}


@app.get("/versions")
async def versions():
    return {name: importlib.metadata.version(name) for name in ("fastapi", "a2wsgi")}


__ExtensionFactory__ = isapi.wsgi.factory(ASGIMiddleware(app))
