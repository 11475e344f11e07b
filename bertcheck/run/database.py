"""The example database: where Hypothesis keeps the counterexamples it found, to replay them first on
the next run of the same test item.

Without ``--bert-db`` that is Hypothesis's own directory database (``.hypothesis/examples``), one per
machine. With ``--bert-db redis://host:6379/0`` (or BERTCHECK_DB) a Redis or Valkey server is layered
over it (`hypothesis.extra.redis.RedisExampleDatabase` under `hypothesis.database.MultiplexedDatabase`):
every machine reads both and writes both, so a counterexample any shard found last night is replayed
first by every later run of that item, on any machine. ``--bert-db-readonly`` (pull-request runs) reads
the server and writes only the local database.

The server is never a reason for a red or hung run: every call has a short socket timeout, and the
first failure (no answer, or any answer that is not a success) turns the server off for the rest of
the process with one warning; the local database goes on. The URL's password never appears in what
bertcheck prints (`redact`).
"""

from __future__ import annotations

import warnings
from datetime import timedelta
from urllib.parse import urlsplit, urlunsplit

from hypothesis import settings
from hypothesis.database import ExampleDatabase, MultiplexedDatabase, ReadOnlyDatabase

# Keys on a server other projects may share: bertcheck's own namespace.
KEY_PREFIX = b"bertcheck-example:"
# A counterexample nobody saw again for this long is gone: two weeks of nightly runs without it.
EXPIRE_AFTER = timedelta(days=14)
# Seconds a call to the server may take before it counts as unreachable: a LAN round trip is
# milliseconds, and the run must not stall behind a server that went away.
SOCKET_TIMEOUT_S = 2.0


class DatabaseError(ValueError):
    """A --bert-db the run cannot use (not a redis:// URL, no redis client installed): one line."""


class SharedDatabaseWarning(UserWarning):
    """The shared database became unreachable; the run goes on with the local one."""


def redact(url: str) -> str:
    """`url` with its password, if any, replaced by ***."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    user = parts.username or ""
    host = parts.hostname or ""
    netloc = f"{user}:***@{host}" + (f":{parts.port}" if parts.port else "")
    return urlunsplit(parts._replace(netloc=netloc))


class Tolerant(ExampleDatabase):
    """A database whose server may go away or answer with errors: the first error (connection refused,
    timeout, an error reply, a protocol error) warns once and turns it off; from then on it reads
    nothing and writes nothing."""

    def __init__(self, inner: ExampleDatabase, where: str, errors: tuple[type[BaseException], ...]):
        super().__init__()
        self.inner, self.where, self.errors = inner, where, errors
        self.down: str | None = None  # why the server is off, once it is

    def __repr__(self) -> str:
        return f"Tolerant({self.where})"

    def _lost(self, err: BaseException) -> None:
        self.down = f"{type(err).__name__}: {err}"
        warnings.warn(
            SharedDatabaseWarning(
                f"bertcheck: the shared example database {self.where} is unreachable or refused a call "
                f"({self.down}); "
                "this run goes on with the local database only"
            ),
            stacklevel=3,
        )

    def fetch(self, key: bytes):
        if self.down:
            return
        try:
            values = list(self.inner.fetch(key))
        except self.errors as err:
            self._lost(err)
            return
        yield from values

    def _call(self, method: str, *args) -> None:
        if self.down:
            return
        try:
            getattr(self.inner, method)(*args)
        except self.errors as err:
            self._lost(err)

    def save(self, key: bytes, value: bytes) -> None:
        self._call("save", key, value)

    def delete(self, key: bytes, value: bytes) -> None:
        self._call("delete", key, value)

    def move(self, src: bytes, dest: bytes, value: bytes) -> None:
        self._call("move", src, dest, value)


def shared(url: str, readonly: bool = False) -> Tolerant:
    """The server at `url` as an example database (read-only if asked), tolerant of its going away."""
    scheme = urlsplit(url).scheme
    if scheme not in ("redis", "rediss", "valkey", "valkeys", "unix"):
        raise DatabaseError(f"--bert-db {redact(url)!r}: not a redis://, rediss:// or unix:// URL")
    try:
        import redis
        from hypothesis.extra.redis import RedisExampleDatabase
    except ImportError:
        raise DatabaseError("--bert-db needs the redis client: pip install 'bertcheck[db]'") from None
    if scheme.startswith("valkey"):  # Valkey speaks the Redis protocol
        url = "redis" + url[len("valkey") :]
    client = redis.Redis.from_url(url, socket_timeout=SOCKET_TIMEOUT_S, socket_connect_timeout=SOCKET_TIMEOUT_S)
    db: ExampleDatabase = RedisExampleDatabase(client, expire_after=EXPIRE_AFTER, key_prefix=KEY_PREFIX)
    if readonly:
        db = ReadOnlyDatabase(db)
    # Every reply that is not a success counts as a lost server, not only a refused connection or a
    # timeout: an error reply (a DB index out of range, a read-only replica, an auth failure), and a
    # protocol error from something that is not Redis on that port. All are RedisError.
    return Tolerant(db, redact(url), (redis.exceptions.RedisError, OSError))


def layered(url: str | None, readonly: bool = False, local: ExampleDatabase | None = None) -> ExampleDatabase:
    """The local database (Hypothesis's own default: ``.hypothesis/examples``), with the server at `url`
    over it when given."""
    local = local if local is not None else settings.get_profile("default").database
    if not url:
        return local
    return MultiplexedDatabase(*[db for db in (local, shared(url, readonly)) if db is not None])
