"""A Flask app on IIS through isapi.wsgi: a page rendered from a Jinja2 template, a static
stylesheet, and a JSON API. No ISAPI code beyond the last line.
"""

from flask import Flask, jsonify, render_template, request

from isapi.wsgi import factory

app = Flask(__name__)


@app.route("/")
def index():
    return render_template("hello.html", name=request.args.get("name", "world"))


@app.route("/api/echo", methods=["POST"])
def echo():
    return jsonify(received=request.get_json(), method=request.method)


__ExtensionFactory__ = factory(app)
