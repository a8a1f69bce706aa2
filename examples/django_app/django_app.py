"""Django on IIS through isapi.wsgi: the whole ISAPI part is the last line."""

import os

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "djsite.settings")

from django.core.wsgi import get_wsgi_application  # noqa: E402

from isapi.wsgi import factory  # noqa: E402

__ExtensionFactory__ = factory(get_wsgi_application())
