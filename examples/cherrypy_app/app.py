"""A CherryPy application on IIS, written as isapi-wsgi's users wrote it: win32traceutil
when inside the DLL, the application mounted on CherryPy's tree, and __ExtensionFactory__
returning isapi_wsgi.ISAPIThreadPoolHandler. The script runs as it did under pywin32.
Routes:
  GET /               a greeting
  GET /greet?name=N   a greeting for N
  anything else       404, with a page of the application's own
"""

import sys

if hasattr(sys, "isapidllhandle"):
    # Print output and tracebacks go to the trace log.
    import win32traceutil  # noqa: F401

import cherrypy
import isapi_wsgi


def not_found(status, message, traceback, version):
    return f"no such page: {cherrypy.request.path_info}\n"


class Root:
    @cherrypy.expose
    def index(self):
        return "Hello from CherryPy under ISAPI.\n"

    @cherrypy.expose
    def greet(self, name="world"):
        return f"Hello, {name}!\n"


cherrypy.tree.mount(Root(), "/", {"/": {"error_page.404": not_found}})


def __ExtensionFactory__():
    # cherrypy.tree is the WSGI application of everything mounted on it.
    return isapi_wsgi.ISAPIThreadPoolHandler(cherrypy.tree)
