"""The Flask application, made by a factory in the usual layout: its templates and static
files sit beside this package's __init__.py, where Flask looks for them."""

from flask import Flask, jsonify, render_template, request


def create_app():
    app = Flask(__name__)

    @app.route("/")
    def index():
        return render_template("hello.html", name=request.args.get("name", "world"))

    @app.route("/api/echo", methods=["POST"])
    def echo():
        return jsonify(received=request.get_json(), method=request.method)

    return app
