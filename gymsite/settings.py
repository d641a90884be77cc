"""Django settings for gymsite: one file, every deployment knob read from the environment."""

import os
import secrets
import tempfile
from pathlib import Path

import dj_database_url
from django.core.exceptions import ImproperlyConfigured

BASE_DIR = Path(__file__).resolve().parent.parent


def envbool(name: str, default: bool) -> bool:
    value = os.environ.get(name)
    if value is None or value == "":
        return default
    if value.lower() in ("1", "true", "yes", "on"):
        return True
    if value.lower() in ("0", "false", "no", "off"):
        return False
    raise ImproperlyConfigured(f"{name} must be a boolean (1/0, true/false), got {value!r}")


def envint(name: str, default: int) -> int:
    value = os.environ.get(name)
    if value is None or value == "":
        return default
    try:
        return int(value)
    except ValueError:
        raise ImproperlyConfigured(f"{name} must be an integer, got {value!r}") from None


def envlist(name: str, default: list[str]) -> list[str]:
    value = os.environ.get(name)
    if value is None:
        return default
    return [item.strip() for item in value.split(",") if item.strip()]


def _secret_key() -> str:
    # A key kept beside the embedded database keeps admin sessions valid across restarts.
    if os.environ.get("DJANGO_SECRET_KEY"):
        return os.environ["DJANGO_SECRET_KEY"]
    path = Path(os.environ.get("GYMSITE_DATA_DIR", BASE_DIR)) / ".secret_key"
    try:
        return path.read_text().strip()
    except OSError:
        key = secrets.token_urlsafe(50)
        try:
            path.write_text(key)
            path.chmod(0o600)
        except OSError:
            pass  # read-only install: a per-process key only costs admin logins on restart
        return key


SECRET_KEY = _secret_key()
DEBUG = envbool("GYMSITE_DEBUG", False)
# A server adds its bind host (gymsite/serving.py: allowed_hosts); these are what a loopback server answers to.
ALLOWED_HOSTS = envlist("GYMSITE_ALLOWED_HOSTS", ["127.0.0.1", "localhost", "[::1]"])
CSRF_TRUSTED_ORIGINS = envlist("GYMSITE_CSRF_TRUSTED_ORIGINS", [])

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "ninja",
    "gymenv",
    "runs",
]

# The browser stack (admin, dashboard). API routes are served by a lean handler with
# API_MIDDLEWARE instead: each classic middleware costs a thread hop under ASGI.
MIDDLEWARE = [
    "gymenv.middleware.host_check",
    "gymenv.middleware.bearer_token",
    "django.middleware.security.SecurityMiddleware",
    "gymsite.static_files.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]
API_MIDDLEWARE = [
    "gymenv.middleware.gzip_large_answers",
    "gymenv.middleware.host_check",
    "gymenv.middleware.cross_origin",
    "gymenv.middleware.bearer_token",
    "gymenv.middleware.json_bodies_only",
]

ROOT_URLCONF = "gymsite.urls"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

ASGI_APPLICATION = "gymsite.asgi.application"

_default_db = f"sqlite:///{Path(os.environ.get('GYMSITE_DATA_DIR', BASE_DIR)) / 'db.sqlite3'}"
DATABASES = {"default": dj_database_url.parse(os.environ.get("DATABASE_URL") or _default_db)}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    DATABASES["default"]["OPTIONS"] = {
        # WAL lets readers (admin, /runs) run beside the ledger writer; NORMAL keeps
        # commits durable against a process kill, which is what the ledger promises.
        "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
        "transaction_mode": "IMMEDIATE",
        "timeout": 20,
    }
    # Tests use a file too, not an in-memory shared-cache database: the ledger writes from env
    # owner threads, and shared-cache databases lock whole tables across connections (no WAL).
    DATABASES["default"]["TEST"] = {"NAME": os.environ.get("GYMSITE_TEST_SQLITE")
                                    or str(Path(tempfile.gettempdir()) / f"gymsite-test-{os.getpid()}.sqlite3")}

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = False
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = os.environ.get("GYMSITE_STATIC_ROOT") or None  # only for collectstatic deployments
# WhiteNoise serves the admin's files straight from the apps under uvicorn, no collectstatic step.
WHITENOISE_USE_FINDERS = True
WHITENOISE_AUTOREFRESH = DEBUG

# Request bodies: an action for the largest env fits easily; anything bigger is refused (413).
DATA_UPLOAD_MAX_MEMORY_SIZE = envint("GYMSITE_MAX_BODY_BYTES", 2 * 1024 * 1024)

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s: %(message)s"}},
    "filters": {"bounded": {"()": "gymsite.logging.TruncateMessage",
                            "max_chars": envint("GYMSITE_LOG_MAX_CHARS", 500)}},
    # Every handler gets the filter: a handler without it would log what clients send, unbounded.
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain", "filters": ["bounded"]}},
    "root": {"handlers": ["console"], "level": os.environ.get("GYMSITE_LOG_LEVEL", "INFO")},
    "loggers": {"django.request": {"level": "ERROR"}},
}

# gymsite's own knobs (GYMSITE_ENV, GYM_API_TOKEN, ...) are read by gymsite/serving.py, which owns their defaults.
