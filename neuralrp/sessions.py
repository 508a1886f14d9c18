"""Login sessions and the login rate limit of exposed mode (an access token set).

`SessionStore` hands out a random id per login, kept server-side (in memory: a restart logs everyone out) with
its expiry and a digest of the token it was granted for, so a session ends on logout, on expiry, and as soon
as the configured token changes. Only digests of the ids are kept.

`LoginLimiter` counts wrong tokens per client: FREE_TRIES are free, then every further wrong try locks that
client out for twice as long as the one before (1 s, 2 s, 4 s ... up to MAX_BACKOFF_S); a right token clears it.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

SESSION_TTL_S = 7 * 24 * 3600
FREE_TRIES = 5
MAX_BACKOFF_S = 300.0
MAX_TRACKED = 10_000  # clients remembered by the limiter (the oldest are forgotten first)


def digest(value: str) -> str:
    """SHA-256 hex of a secret (what is kept instead of the secret)."""
    return hashlib.sha256(value.encode()).hexdigest()


class SessionStore:
    """Random per-login session ids with an expiry, bound to the token they were granted for."""

    def __init__(self, ttl_s: float = SESSION_TTL_S, clock: Callable[[], float] = time.monotonic) -> None:
        self.ttl_s = ttl_s
        self.clock = clock
        self._sessions: dict[str, tuple[float, str]] = {}
        self._lock = threading.Lock()

    def create(self, token: str) -> str:
        """A new session id for a login with `token`."""
        sid = secrets.token_urlsafe(32)
        now = self.clock()
        with self._lock:
            self._sessions = {k: v for k, v in self._sessions.items() if v[0] > now}
            self._sessions[digest(sid)] = (now + self.ttl_s, digest(token))
        return sid

    def valid(self, sid: str, token: str) -> bool:
        """True when `sid` is a live session granted for the current `token`; an expired or stale one is dropped."""
        key = digest(sid)
        with self._lock:
            entry = self._sessions.get(key)
            if entry is None:
                return False
            expires, granted = entry
            if expires > self.clock() and hmac.compare_digest(granted, digest(token)):
                return True
            del self._sessions[key]
            return False

    def revoke(self, sid: str) -> None:
        """End one session (logout)."""
        with self._lock:
            self._sessions.pop(digest(sid), None)

    def __len__(self) -> int:
        with self._lock:
            return len(self._sessions)


@dataclass
class _Tries:
    failures: int = 0
    locked_until: float = 0.0


class LoginLimiter:
    """Wrong-token counting per client with exponential backoff."""

    def __init__(self, free_tries: int = FREE_TRIES, max_backoff_s: float = MAX_BACKOFF_S,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.free_tries = free_tries
        self.max_backoff_s = max_backoff_s
        self.clock = clock
        self._clients: dict[str, _Tries] = {}
        self._lock = threading.Lock()

    def wait_s(self, client: str) -> float:
        """Seconds this client must still wait before its next try (0 when it may try now)."""
        with self._lock:
            tries = self._clients.get(client)
            return max(0.0, tries.locked_until - self.clock()) if tries else 0.0

    def failed(self, client: str) -> float:
        """Count a wrong token; returns the lockout it earned (0 while the free tries last)."""
        with self._lock:
            if client not in self._clients and len(self._clients) >= MAX_TRACKED:
                self._clients.pop(next(iter(self._clients)))
            tries = self._clients.setdefault(client, _Tries())
            tries.failures += 1
            over = tries.failures - self.free_tries
            lockout = min(2.0 ** (over - 1), self.max_backoff_s) if over > 0 else 0.0
            tries.locked_until = self.clock() + lockout
            return lockout

    def succeeded(self, client: str) -> None:
        """A right token: forget the client's wrong ones."""
        with self._lock:
            self._clients.pop(client, None)
