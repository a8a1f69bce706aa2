"""A FastAPI app on IIS through isapi.asgi: JSON with path, query and body parameters, a
lifespan that prepares what the requests use, and server-sent events streamed as they are
made. No ISAPI code beyond the last line: IIS runs the app on an asyncio event loop inside
its worker process, with no separate server and no ASGI-to-WSGI bridge.
"""

import asyncio
import contextlib

from fastapi import FastAPI, Request
from fastapi.responses import StreamingResponse
from pydantic import BaseModel

from isapi.asgi import factory


@contextlib.asynccontextmanager
async def lifespan(app):
    # Runs when IIS loads the extension (what follows the yield, when IIS unloads it): open
    # database pools and the like here. What it yields is every request's `request.state`.
    yield {"tax_rate": 0.2}


app = FastAPI(title="isapi-freeze FastAPI example", lifespan=lifespan)


class Item(BaseModel):
    name: str
    price: float


@app.get("/")
async def hello():
    return {"message": "Hello from FastAPI on IIS"}


@app.get("/items/{item_id}")
async def read_item(item_id: int, q: str | None = None):
    return {"item_id": item_id, "q": q}


@app.post("/items")
async def price_item(item: Item, request: Request):
    total = round(item.price * (1 + request.state.tax_rate), 2)
    return {"name": item.name, "price": item.price, "with_tax": total}


@app.get("/events")
async def events(count: int = 3):
    async def ticks():
        for i in range(count):
            if i:
                await asyncio.sleep(0.5)
            yield f"data: tick {i}\n\n"

    return StreamingResponse(ticks(), media_type="text/event-stream")


__ExtensionFactory__ = factory(app)
