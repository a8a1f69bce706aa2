"""A Bottle app on IIS through isapi.wsgi: pages rendered from the templates in views/
beside this script (with template() and with the @view decorator, both through a layout),
a JSON route and a 404 page of the app's own. No ISAPI code beyond the last line.
"""

import os

import bottle
from bottle import Bottle, request, template, view

from isapi.wsgi import factory

# Bottle looks for views/ in the working folder, which under IIS is the worker process's
# (inetsrv), not this one: look beside this file, where isapi-freeze ships views/.
bottle.TEMPLATE_PATH.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "views"))

app = Bottle()


@app.route("/")
def index():
    return template("index", name=request.query.name or "world")


@app.route("/items/<number:int>")
@view("item")
def item(number):
    return {"number": number, "double": number * 2}


@app.route("/api/items/<number:int>")
def item_json(number):
    # Bottle answers a dict as JSON.
    return {"number": number, "even": number % 2 == 0}


@app.error(404)
def not_found(error):
    return f"no such page: {request.path}\n"


__ExtensionFactory__ = factory(app)
