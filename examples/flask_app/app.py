"""A Flask app on IIS through isapi.wsgi: a page rendered from a Jinja2 template, a static
stylesheet, and a JSON API, made by the app factory in hello_site. No ISAPI code beyond the
last line.
"""

from hello_site import create_app

from isapi.wsgi import factory

__ExtensionFactory__ = factory(create_app())
