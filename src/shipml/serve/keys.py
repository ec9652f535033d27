"""API keys for the server: create, verify, check a scope, list, revoke.

A key reads ``shipml_<prefix>_<secret>``: `prefix` is 12 hex characters, public, stored, and used
to find the key's row; `secret` is ``secrets.token_urlsafe(32)`` (256 bits). The database keeps
only ``hmac-sha256$<hex>`` = HMAC-SHA-256(pepper, secret). `create` returns the full key once;
nothing here stores or logs it, and no ApiKey holds it.

Why a fast keyed hash and not a slow KDF: a slow KDF (scrypt, bcrypt) protects *guessable*
passwords. A 256-bit random secret cannot be guessed however fast the hash, so scrypt only made
every failed login cost the server ~50 ms of CPU (20x a good one: an easy way to burn its cores).
The pepper is a server-side secret that is not in the database, so a stolen database alone does
not even let anyone test a candidate secret. It comes from ``SHIPML_KEY_PEPPER`` or else from
``$SHIPML_HOME/key-pepper`` (created once, mode 0600, by the same mechanism as the PII secret in
pii.py). Every process that creates or checks keys of one registry (the CLI, each server, each
container) needs the same pepper: set ``SHIPML_KEY_PEPPER`` for a shared or a PostgreSQL registry.

Old rows (``scrypt$n$r$p$<hex>`` with a salt, made by shipml 0.1) still verify; on their first
successful use they are rewritten as HMAC rows. Until then a wrong secret for such a row still
costs one scrypt, which the server's per-address limit on failed logins bounds.

Scopes: ``predict``, ``feedback``, ``admin``; ``admin`` implies the other two.

Cost, caching and revocation. A verification costs one indexed database lookup and one HMAC
(microseconds), good or bad. A successful one is remembered in memory for at most `cache_ttl`
seconds (default and maximum 1 s, keyed by sha256 of the presented key, never the key itself) so
that a busy key is checked on the server's event loop without a database round trip. So:

- `revoke` through the same KeyStore (the server's own admin route) takes effect at once;
- a revoke made elsewhere (another process, the CLI while a server runs) takes effect on a
  running server within `cache_ttl` seconds (<= 1 s).

Failures are never cached; limiting them per client address is the server's job (app.py).
`last_used_at` is written at most once a minute per key (not one write per request).

Timing. An unknown prefix and a revoked key pay the same HMAC as a wrong secret; digests are
compared with `hmac.compare_digest`. A malformed key is rejected before any hashing or database
work: its shape says nothing about the stored keys.
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
PEPPER_ENV = "SHIPML_KEY_PEPPER"
PEPPER_FILE = "key-pepper"
MAX_CACHE_TTL = 1.0  # seconds: a revoke made elsewhere is honoured within this
_NAME = re.compile(r"^[A-Za-z0-9_-]{1,100}$")
_KEY = re.compile(r"^shipml_([0-9a-f]{12})_([A-Za-z0-9_-]{43})$")  # token_urlsafe(32): 43 chars
_HMAC = "hmac-sha256"
_LEGACY = "scrypt"  # rows made by shipml 0.1: verified, then rewritten as HMAC on first use
_DKLEN = 32
_MAXMEM = 64 * 1024 * 1024
_USED_EVERY = dt.timedelta(seconds=60)  # last_used_at precision: one write a minute per key


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
    ``Registry(...).engine`` (opening a Registry creates or upgrades them). `pepper`: the HMAC
    key (default: ``SHIPML_KEY_PEPPER`` or ``$SHIPML_HOME/key-pepper``). `cache_ttl`: seconds a
    successful verification is remembered, 0 to 1 (see the module docstring); `clock`: a
    monotonic clock in seconds, injectable for tests.
    """

    def __init__(
        self,
        engine: sa.Engine,
        *,
        pepper: bytes | None = None,
        cache_ttl: float = MAX_CACHE_TTL,
        cache_size: int = 10_000,
        clock: Callable[[], float] = time.monotonic,
    ):
        if not 0 <= cache_ttl <= MAX_CACHE_TTL or cache_size < 0:
            raise ValueError(
                f"cache_ttl must be between 0 and {MAX_CACHE_TTL:g} s (a revoke made elsewhere "
                "waits for it) and cache_size >= 0"
            )
        if pepper is None:
            from shipml.serve.pii import load_secret

            pepper = load_secret(env=PEPPER_ENV, filename=PEPPER_FILE)
        self.engine = engine
        self.cache_ttl = float(cache_ttl)
        self._pepper = bytes(pepper)
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
        hashed = _hash(self._pepper, secret)
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
                            salt="",  # only the legacy scrypt rows have one
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
        """Whether `presented` was verified in the last `cache_ttl` seconds: `require` then
        answers without the database (the server checks it on the event loop)."""
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
        if row is None or row["revoked_at"] is not None:
            _hash(self._pepper, secret)  # the same work as a wrong secret
            return None
        if not self._matches(secret, row["salt"], row["hash"]):
            return None
        changes = {}
        if row["hash"].startswith(_LEGACY + "$"):
            changes.update(hash=_hash(self._pepper, secret), salt="")
        last = _utc(row["last_used_at"])
        now = _now()
        if last is None or now - last >= _USED_EVERY:
            changes["last_used_at"] = now
        if changes:
            row = self._record(row, changes)
        return _api_key(row)

    def _matches(self, secret: str, salt_hex: str, stored: str) -> bool:
        algorithm, _, digest = stored.partition("$")
        if algorithm == _HMAC:
            return hmac.compare_digest(_hash(self._pepper, secret), stored)
        if algorithm == _LEGACY:
            n, r, p, digest = digest.split("$")
            return hmac.compare_digest(_scrypt(secret, salt_hex, int(n), int(r), int(p)), digest)
        raise RegistryError(f"API key hash uses an unknown algorithm {algorithm!r}")

    def _record(self, row, changes: dict):
        """Write `changes` (a hash upgrade, last_used_at) to the key's row; a failed write is
        logged, not a reason to refuse the request."""
        try:
            with self.engine.begin() as conn:
                conn.execute(
                    t.api_keys.update()
                    .where(t.api_keys.c.id == row["id"], t.api_keys.c.hash == row["hash"])
                    .values(**changes)
                )
        except sa.exc.DBAPIError as exc:  # e.g. database locked
            log.warning("could not update API key %r: %s", row["name"], exc)
            return row
        if "hash" in changes:
            log.info("API key %r: scrypt hash replaced by HMAC-SHA-256", row["name"])
        return {**row, **changes}

    @staticmethod
    def _active_id(conn, name: str) -> int | None:
        return conn.execute(
            sa.select(t.api_keys.c.id).where(
                t.api_keys.c.name == name, t.api_keys.c.revoked_at.is_(None)
            )
        ).scalar()


def _hash(pepper: bytes, secret: str) -> str:
    """``hmac-sha256$<hex>``: what the database stores for a key."""
    return f"{_HMAC}$" + hmac.new(pepper, secret.encode(), hashlib.sha256).hexdigest()


def _scrypt(secret: str, salt_hex: str, n: int, r: int, p: int) -> str:
    """The legacy hash (shipml 0.1 rows), checked until the row's first successful use."""
    return hashlib.scrypt(
        secret.encode(), salt=bytes.fromhex(salt_hex), n=n, r=r, p=p, maxmem=_MAXMEM, dklen=_DKLEN
    ).hex()


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
