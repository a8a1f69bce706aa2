"""Settings of the example site: SQLite in the output's data folder, the admin and static files on."""

import os

BASE_DIR = os.path.dirname(os.path.abspath(__file__))
# The database lives in the output folder's data\ folder: besides logs\, the one folder IIS's
# worker may write to once `django_app.exe install --data-dir data` has granted it.
DATA_DIR = os.path.join(os.path.dirname(BASE_DIR), "data")
SECRET_KEY = "isapi-freeze-example-not-secret"
DEBUG = False
ALLOWED_HOSTS = ["*"]
INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "djsite",
]
MIDDLEWARE = [
    "django.middleware.common.CommonMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
]
ROOT_URLCONF = "djsite.urls"
TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "django.template.context_processors.request",
            ]
        },
    }
]
DATABASES = {
    "default": {
        "ENGINE": "django.db.backends.sqlite3",
        "NAME": os.environ.get("DJSITE_DB", os.path.join(DATA_DIR, "notes.sqlite3")),
    }
}
LANGUAGE_CODE = "en-us"
USE_I18N = True
TIME_ZONE = "Europe/Paris"
USE_TZ = True
STATIC_URL = "static/"
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
