"""DB URLs as 1.6 writes them: `scheme://[user[:password]@]host[:port]/database`.

`sqlite:///abs/path.db` and `text:///abs/dir` carry a path instead of a
host and database (`text://rel/dir` is relative to the config directory,
resolved by the driver). A password may contain `@` and `:`; the last `@`
before the path ends the credentials.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from urllib.parse import unquote

# The embedded default database (db_sqlite) when no db_url is given:
# system-wide when that directory can be written, else in the cwd.
DEFAULT_DB_PATH = "/var/lib/sipserver/sipserver.db"
FALLBACK_DB_PATH = "sipserver.db"


class DbUrlError(ValueError):
    """A db_url that cannot be used (malformed, or no driver loaded)."""


@dataclass(frozen=True, slots=True)
class DbUrl:
    scheme: str
    user: str = ""
    password: str = ""
    host: str = ""
    port: int | None = None
    database: str = ""  # the database name, or the path for sqlite/text
    text: str = ""  # the URL as written

    def redacted(self) -> str:
        """The URL with its password hidden, for logs and errors."""
        if not self.password:
            return self.text
        return self.text.replace(":" + self.password + "@", ":***@", 1)


_PATH_SCHEMES = {"sqlite", "sqlite3", "text"}


def parse_db_url(text: str) -> DbUrl:
    """Split a db_url; raise DbUrlError naming what is wrong."""
    scheme, sep, rest = text.partition("://")
    if not sep or not scheme or not scheme.replace("_", "").isalnum():
        raise DbUrlError(f'db_url "{text}": expected scheme://...')
    scheme = scheme.lower()
    if scheme in _PATH_SCHEMES:
        if not rest:
            raise DbUrlError(f'db_url "{text}": missing path')
        return DbUrl(scheme, database=rest, text=text)
    creds, at, hostpart = rest.rpartition("@")
    if not at:
        hostpart, creds = rest, ""
    user, _, password = creds.partition(":")
    hostport, slash, database = hostpart.partition("/")
    host, port = hostport, None
    if hostport.startswith("["):
        end = hostport.find("]")
        if end < 0:
            raise DbUrlError(f'db_url "{text}": unterminated IPv6 address')
        host, tail = hostport[1:end], hostport[end + 1:]
        if tail.startswith(":"):
            port = _port(text, tail[1:])
    elif ":" in hostport:
        host, _, p = hostport.rpartition(":")
        port = _port(text, p)
    if not host:
        raise DbUrlError(f'db_url "{text}": missing host')
    if scheme not in ("http", "https", "virtual") and (not slash or not database):
        raise DbUrlError(f'db_url "{text}": missing database name')
    return DbUrl(scheme, unquote(user), unquote(password), host, port, database, text)


def _port(text: str, value: str) -> int:
    if not value.isdigit() or not 0 < int(value) < 65536:
        raise DbUrlError(f'db_url "{text}": bad port "{value}"')
    return int(value)


def default_db_url(env: Mapping[str, str] | None = None) -> str:
    """$SIPSERVER_DB_URL, else `sqlite://` + DEFAULT_DB_PATH when its directory
    exists (or can be made) and is writable, else `./sipserver.db` (absolute)."""
    env = os.environ if env is None else env
    if env.get("SIPSERVER_DB_URL"):
        return env["SIPSERVER_DB_URL"]
    directory = os.path.dirname(DEFAULT_DB_PATH)
    existing = directory
    while not os.path.isdir(existing) and os.path.dirname(existing) != existing:
        existing = os.path.dirname(existing)  # the directory would be made under this one
    if os.access(existing, os.W_OK | os.X_OK) and (
            existing == directory or not os.path.exists(directory)):
        return "sqlite://" + DEFAULT_DB_PATH
    return "sqlite://" + os.path.abspath(FALLBACK_DB_PATH)
