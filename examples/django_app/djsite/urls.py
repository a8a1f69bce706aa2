"""Routes: the notes page, adding a note, and static files (the admin's among them)."""

from django.contrib.staticfiles.views import serve
from django.urls import path, re_path

from . import views

urlpatterns = [
    path("notes/", views.notes),
    path("notes/add", views.add_note),
    path("time", views.local_time),
    # IIS would serve static files itself; here Django does, from the apps' static folders.
    re_path(r"^static/(?P<path>.*)$", serve, {"insecure": True}),
]
