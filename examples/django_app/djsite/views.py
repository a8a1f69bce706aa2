"""The notes: kept in SQLite with plain SQL, listed through a template."""

import datetime
import os
import zoneinfo

from django.db import connection
from django.http import HttpResponse
from django.shortcuts import render
from django.utils.translation import gettext, override


def _table():
    # SQLite makes the file, not its folder (made here when the app may, as in tests; on
    # IIS `install --data-dir data` makes it and grants the worker the right to write).
    os.makedirs(os.path.dirname(connection.settings_dict["NAME"]), exist_ok=True)
    with connection.cursor() as cursor:
        cursor.execute("CREATE TABLE IF NOT EXISTS note (id INTEGER PRIMARY KEY, text TEXT NOT NULL)")


def add_note(request):
    _table()
    with connection.cursor() as cursor:
        cursor.execute("INSERT INTO note (text) VALUES (%s)", [request.GET.get("text", "")])
    return HttpResponse("added\n", content_type="text/plain")


def notes(request):
    _table()
    with connection.cursor() as cursor:
        cursor.execute("SELECT text FROM note ORDER BY id")
        texts = [row[0] for row in cursor.fetchall()]
    with override("fr"):
        # Django's own French catalogue (a locale file beside its module).
        yes = gettext("Yes")
    return render(request, "djsite/notes.html", {"notes": texts, "yes": yes})


def local_time(request):
    # zoneinfo reads its data from the tzdata package, through importlib.resources.
    moment = datetime.datetime(2026, 7, 1, 12, 0, tzinfo=datetime.timezone.utc)
    local = moment.astimezone(zoneinfo.ZoneInfo("Europe/Paris"))
    return HttpResponse(local.isoformat() + "\n", content_type="text/plain")
