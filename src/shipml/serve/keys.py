"""API keys for the server: create, verify, check a scope, list, revoke.

A key reads ``shipml_<prefix>_<secret>``: `prefix` is 12 hex characters, public, stored, and used
to find the key's row; `secret` is ``secrets.token_urlsafe(32)`` (256 bits). The database keeps
only a random salt and ``scrypt(secret, salt, n=2**14, r=8, p=1)`` (parameters stored with the
hash, so they can be raised later without breaking old keys). `create` returns the full key once;
nothing here stores or logs it, and no ApiKey holds it.

Scopes: ``predict``, ``feedback``, ``admin``; ``admin`` implies the other two.

Cost and caching. scrypt costs ~50 ms of CPU and 16 MiB per check on purpose (a stolen database
must be slow to brute-force), far too much to pay per request. So a *successful* verification
is cached in memory for `cache_ttl` seconds (default 60), keyed by sha256 of the presented key
(the key itself is not kept). What this means for revocation:

- `revoke` through the same KeyStore (the server's own admin route) takes effect at once;
- a revoke made elsewhere (another process, the CLI while a server runs) takes effect on a
  running server within `cache_ttl` seconds, when its cache entry expires.

Failures are never cached. `last_used_at` is written on each cache miss, so at most once per
`cache_ttl` per key and server process.

Timing. An unknown prefix pays a dummy scrypt and a revoked key pays the real one, so response
time does not tell an attacker which prefixes exist or are revoked; digests are compared with
`hmac.compare_digest`. A malformed key is rejected before any hashing: its shape says nothing
about the stored keys. Each failed attempt with a well-formed key costs the server one scrypt,
so the server should also rate-limit failed attempts per client address.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import logging
import re
import secrets
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Iterable
from dataclasses import dataclass

import sqlalchemy as sa

from shipml.errors import AuthError, RegistryError
from shipml.registry import tables as t

__all__ = ["SCOPES", "ApiKey", "KeyStore"]

log = logging.getLogger(__name__)

SCOPES = ("predict", "feedback", "admin")
_NAME = re.compile(r"^[A-Za-z0-9_-]{1,100}$")
_KEY = re.compile(r"^shipml_([0-9a-f]{12})_([A-Za-z0-9_-]{43})$")  # token_urlsafe(32): 43 chars
_SCRYPT = {"n": 2**14, "r": 8, "p": 1}  # ~50 ms, 16 MiB (128 * r * n bytes)
_DKLEN = 32
_MAXMEM = 64 * 1024 * 1024  # OpenSSL's default limit (32 MiB) leaves no room to raise n later
# Checked against when the prefix is unknown, so that case costs one scrypt like a wrong secret.
_DUMMY_SALT = secrets.token_hex(16)
_DUMMY_HASH = "scrypt${n}${r}${p}$".format(**_SCRYPT) + secrets.token_hex(_DKLEN)


@dataclass(frozen=True)
class ApiKey:
    """What is known about a key; never its secret (so neither is its repr)."""

    name: str
    prefix: str
    scopes: tuple[str, ...]
    created_at: dt.datetime
    last_used_at: dt.datetime | None = None
    revoked_at: dt.datetime | None = None

    @property
    def active(self) -> bool:
        return self.revoked_at is None

    def allows(self, scope: str) -> bool:
        """True if the key has `scope` or is an admin key."""
        return scope in self.scopes or "admin" in self.scopes


class KeyStore:
    """API keys in the registry database.

    `engine`: a SQLAlchemy engine whose tables are at the registry's head revision, e.g.
    ``Registry(...).engine`` (opening a Registry creates or upgrades them). `cache_ttl`: seconds
    a successful verification is remembered (see the module docstring for what this means for
    revocation); `clock`: a monotonic clock in seconds, injectable for tests.
    """

    def __init__(
        self,
        engine: sa.Engine,
        *,
        cache_ttl: float = 60.0,
        cache_size: int = 10_000,
        clock: Callable[[], float] = time.monotonic,
    ):
        if cache_ttl < 0 or cache_size < 0:
            raise ValueError("cache_ttl and cache_size must be >= 0")
        self.engine = engine
        self.cache_ttl = float(cache_ttl)
        self._cache_size = int(cache_size)
        self._clock = clock
        # sha256(presented key) -> (expiry on `clock`, ApiKey), oldest first (expiry order).
        self._cache: OrderedDict[bytes, tuple[float, ApiKey]] = OrderedDict()
        self._lock = threading.Lock()
        self._revocations = 0  # bumped by revoke(): a verification started before is not cached

    def __repr__(self) -> str:
        return f"KeyStore({self.engine.url.render_as_string(hide_password=True)!r})"

    # -- management ----------------------------------------------------------------------------
    def create(self, name: str, scopes: Iterable[str]) -> str:
        """Create a key and return it, ``shipml_<prefix>_<secret>``: the only time it is shown."""
        name = _check_name(name)
        scope_text = ",".join(_check_scopes(scopes))
        secret = secrets.token_urlsafe(32)
        salt = secrets.token_hex(16)
        hashed = _hash(secret, salt)
        for _attempt in range(5):
            prefix = secrets.token_hex(6)
            try:
                with self.engine.begin() as conn:
                    if self._active_id(conn, name) is not None:
                        raise RegistryError(_duplicate(name))
                    conn.execute(
                        t.api_keys.insert().values(
                            name=name,
                            prefix=prefix,
                            hash=hashed,
                            salt=salt,
                            scopes=scope_text,
                            created_at=_now(),
                        )
                    )
            except sa.exc.IntegrityError as exc:
                # A concurrent create of the same name (partial unique index), or - once in
                # 2**48 - a prefix already taken: then draw another prefix.
                with self.engine.connect() as conn:
                    if self._active_id(conn, name) is not None:
                        raise RegistryError(_duplicate(name)) from exc
                continue
            log.info("created API key %r (prefix %s, scopes %s)", name, prefix, scope_text)
            return f"shipml_{prefix}_{secret}"
        raise RegistryError(f"could not create API key {name!r}: try again")

    def list(self, *, include_revoked: bool = True) -> list[ApiKey]:
        """All keys, oldest first (revoked ones too unless `include_revoked=False`)."""
        query = sa.select(t.api_keys).order_by(t.api_keys.c.id)
        if not include_revoked:
            query = query.where(t.api_keys.c.revoked_at.is_(None))
        with self.engine.connect() as conn:
            return [_api_key(row) for row in conn.execute(query).mappings()]

    def revoke(self, name: str) -> None:
        """Revoke the active key called `name` (effect on other processes: see the docstring)."""
        with self.engine.begin() as conn:
            done = conn.execute(
                t.api_keys.update()
                .where(t.api_keys.c.name == name, t.api_keys.c.revoked_at.is_(None))
                .values(revoked_at=_now())
            ).rowcount
            if not done:
                names = [r[0] for r in conn.execute(sa.select(t.api_keys.c.name).distinct())]
        if not done:
            if name in names:
                raise RegistryError(f"API key {name!r} is already revoked")
            active = ", ".join(k.name for k in self.list(include_revoked=False)) or "none"
            raise RegistryError(f"no API key named {name!r} (active keys: {active})")
        with self._lock:
            self._revocations += 1
            for digest in [d for d, (_, key) in self._cache.items() if key.name == name]:
                del self._cache[digest]
        log.info("revoked API key %r", name)

    # -- checking requests ---------------------------------------------------------------------
    def verify(self, presented: str | None) -> ApiKey | None:
        """The key's details if `presented` is a valid, unrevoked key, else None."""
        if not isinstance(presented, str):
            return None
        presented = presented.strip()
        match = _KEY.match(presented)
        if match is None:
            return None
        digest = hashlib.sha256(presented.encode()).digest()
        with self._lock:
            hit = self._cache.get(digest)
            if hit is not None:
                if hit[0] > self._clock():
                    return hit[1]
                del self._cache[digest]
            generation = self._revocations
        key = self._verify_in_database(*match.groups())
        if key is not None and self.cache_ttl > 0 and self._cache_size > 0:
            with self._lock:
                if generation == self._revocations:  # no revoke() ran meanwhile
                    now = self._clock()
                    while self._cache and next(iter(self._cache.values()))[0] <= now:
                        self._cache.popitem(last=False)  # expired (entries are in expiry order)
                    self._cache[digest] = (now + self.cache_ttl, key)
                    self._cache.move_to_end(digest)
                    while len(self._cache) > self._cache_size:
                        self._cache.popitem(last=False)
        return key

    def cached(self, presented: str | None) -> bool:
        """Whether `presented` was verified recently: `require` then answers without the
        database or scrypt (the server checks it on the event loop)."""
        if not isinstance(presented, str):
            return False
        digest = hashlib.sha256(presented.strip().encode()).digest()
        with self._lock:
            hit = self._cache.get(digest)
            return hit is not None and hit[0] > self._clock()

    def require(self, presented: str | None, scope: str) -> ApiKey:
        """The key, if valid and allowed `scope`; else AuthError with status 401 or 403."""
        if scope not in SCOPES:
            raise ValueError(f"unknown scope {scope!r}: one of {', '.join(SCOPES)}")
        if presented is None or not presented.strip():
            raise AuthError("no API key was sent", status=401)
        key = self.verify(presented)
        if key is None:
            raise AuthError("the API key is not valid (unknown, malformed or revoked)", status=401)
        if not key.allows(scope):
            raise AuthError(
                f"API key {key.name!r} does not have the {scope!r} scope "
                f"(it has: {', '.join(key.scopes)})",
                status=403,
            )
        return key

    def clear_cache(self) -> None:
        with self._lock:
            self._cache.clear()

    # -- internals -----------------------------------------------------------------------------
    def _verify_in_database(self, prefix: str, secret: str) -> ApiKey | None:
        with self.engine.connect() as conn:
            row = (
                conn.execute(sa.select(t.api_keys).where(t.api_keys.c.prefix == prefix))
                .mappings()
                .first()
            )
        if row is None:
            _matches(secret, _DUMMY_SALT, _DUMMY_HASH)  # same cost as a wrong secret
            return None
        if not _matches(secret, row["salt"], row["hash"]) or row["revoked_at"] is not None:
            return None
        used = _now()
        try:
            with self.engine.begin() as conn:
                conn.execute(
                    t.api_keys.update()
                    .where(t.api_keys.c.id == row["id"])
                    .values(last_used_at=used)
                )
        except sa.exc.DBAPIError as exc:  # e.g. database locked: not a reason to refuse a request
            log.warning("could not record the use of API key %r: %s", row["name"], exc)
            used = row["last_used_at"]
        return _api_key({**row, "last_used_at": used})

    @staticmethod
    def _active_id(conn, name: str) -> int | None:
        return conn.execute(
            sa.select(t.api_keys.c.id).where(
                t.api_keys.c.name == name, t.api_keys.c.revoked_at.is_(None)
            )
        ).scalar()


def _scrypt(secret: str, salt_hex: str, n: int, r: int, p: int) -> str:
    return hashlib.scrypt(
        secret.encode(), salt=bytes.fromhex(salt_hex), n=n, r=r, p=p, maxmem=_MAXMEM, dklen=_DKLEN
    ).hex()


def _hash(secret: str, salt_hex: str) -> str:
    """``scrypt$n$r$p$<hex digest>``: the parameters travel with the hash."""
    return "scrypt${n}${r}${p}$".format(**_SCRYPT) + _scrypt(secret, salt_hex, **_SCRYPT)


def _matches(secret: str, salt_hex: str, stored: str) -> bool:
    algorithm, n, r, p, digest = stored.split("$")
    if algorithm != "scrypt":
        raise RegistryError(f"API key hash uses an unknown algorithm {algorithm!r}")
    computed = _scrypt(secret, salt_hex, int(n), int(r), int(p))
    return hmac.compare_digest(computed, digest)


def _check_name(name: str) -> str:
    if not isinstance(name, str) or not _NAME.match(name):
        raise RegistryError(f"bad API key name {name!r}: use 1 to 100 letters, digits, '-' or '_'")
    return name


def _check_scopes(scopes: Iterable[str]) -> list[str]:
    if isinstance(scopes, str):
        scopes = scopes.split(",")
    given = {s.strip() for s in scopes}
    unknown = sorted(given - set(SCOPES))
    if unknown:
        raise RegistryError(
            f"unknown API key scope {', '.join(map(repr, unknown))}: use {', '.join(SCOPES)}"
        )
    if not given:
        raise RegistryError(f"an API key needs at least one scope: {', '.join(SCOPES)}")
    return [s for s in SCOPES if s in given]


def _duplicate(name: str) -> str:
    return f"an active API key is already called {name!r}: pick another name or revoke it first"


def _now() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc)


def _utc(value: dt.datetime | None) -> dt.datetime | None:
    """SQLite returns naive datetimes (stored in UTC); PostgreSQL aware ones."""
    if value is not None and value.tzinfo is None:
        return value.replace(tzinfo=dt.timezone.utc)
    return value


def _api_key(row) -> ApiKey:
    return ApiKey(
        name=row["name"],
        prefix=row["prefix"],
        scopes=tuple(s for s in row["scopes"].split(",") if s),
        created_at=_utc(row["created_at"]),
        last_used_at=_utc(row["last_used_at"]),
        revoked_at=_utc(row["revoked_at"]),
    )
