"""The FastAPI "hello" JSON app the benchmarks serve two ways: natively through isapi.asgi
(fastapi_asgi.py) and through a2wsgi's ASGI-to-WSGI bridge on isapi.wsgi
(fastapi_a2wsgi.py)."""

from fastapi import FastAPI

app = FastAPI()


@app.get("/hello")
async def hello():
    return {"message": "Hello from FastAPI"}
