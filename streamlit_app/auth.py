"""Who may use the app, and as what: viewers browse, operators may also start refreshes and roll back.

Three modes, from the app's secrets:
- open: neither a `[users]` nor an `[auth]` section. Allowed only while the app listens on loopback
  (access.py checks the running server); the anonymous user is then an operator.
- password: `[users.NAME]` entries with a `password_hash` (PBKDF2-SHA256, made with
  `python -m streamlit_app.auth`) and a `role` ("viewer" or "operator").
- oidc: Streamlit's own `[auth]` section (st.login); operators by verified e-mail in `[roles]`.

Configuration that exists but cannot be used is an error, never a reason to fall back to open mode.
Passwords are never stored or compared in clear; every sign-in attempt costs one PBKDF2 hash, known
name or not, and repeated failures slow down (see `Throttle`).
"""

from __future__ import annotations

import getpass
import hashlib
import hmac
import re
import secrets as token_source
import sys
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass, field

VIEWER, OPERATOR = "viewer", "operator"
ROLES = (VIEWER, OPERATOR)
ITERATIONS = 600_000
MIN_ITERATIONS = 1_000
SCHEME = "pbkdf2_sha256"
OIDC_REQUIRED = ("redirect_uri", "cookie_secret")
# The sections the app's secrets may have; any other (a typo such as [user.ann]) is an error, never
# silently "no sign-in configured".
KNOWN_SECTIONS = ("dagster", "users", "auth", "roles")
# Compared against when the name is unknown, so an unknown name costs the same one hash as a known one.
_UNKNOWN_USER_HASH = f"{SCHEME}${ITERATIONS}${'0' * 32}${'0' * 64}"
_HASH_SHAPE = re.compile(r"^pbkdf2_sha256\$(\d+)\$([0-9a-f]{16,128})\$([0-9a-f]{64})$")


class ConfigurationError(ValueError):
    """Sign-in settings that exist but cannot be used; the message names the entry, never a secret."""


@dataclass(frozen=True)
class User:
    name: str
    role: str

    @property
    def is_operator(self) -> bool:
        return self.role == OPERATOR


OPEN_USER = User("anonymous", OPERATOR)


def hash_password(password: str, salt: str | None = None, iterations: int = ITERATIONS) -> str:
    salt = salt or token_source.token_hex(16)
    digest = hashlib.pbkdf2_hmac("sha256", password.encode(), bytes.fromhex(salt), iterations).hex()
    return f"{SCHEME}${iterations}${salt}${digest}"


def verify_password(password: str, stored: str) -> bool:
    """One PBKDF2 computation, then a constant-time comparison; False for a malformed hash."""
    found = _HASH_SHAPE.match(stored)
    if not found:
        return False
    iterations, salt, digest = int(found[1]), found[2], found[3]
    candidate = hash_password(password, salt, iterations).rsplit("$", 1)[-1]
    return hmac.compare_digest(candidate, digest)


def mode(secrets: Mapping[str, object]) -> str:
    """'password' or 'oidc' when that section exists at all (even empty: then it is a configuration error)."""
    if "users" in secrets:
        return "password"
    if "auth" in secrets:
        return "oidc"
    return "open"


def configuration_problems(secrets: Mapping[str, object]) -> list[str]:
    """Everything wrong with the sign-in settings, in words an administrator can act on."""
    problems: list[str] = []
    unknown = sorted(str(k)[:40] for k in secrets if k not in KNOWN_SECTIONS)
    if unknown:
        problems.append(
            f"Unknown section(s) {', '.join(unknown)}: the secrets may hold only "
            f"{', '.join(KNOWN_SECTIONS)} (is [users] misspelled?)."
        )
    if "users" in secrets and "auth" in secrets:
        problems.append("Both [users] (passwords) and [auth] (single sign-on) are set: keep one of them.")
    how = mode(secrets)
    if how == "password":
        users = secrets["users"]
        if not isinstance(users, Mapping) or not users:
            return problems + [
                "The [users] section has no user: add at least one [users.NAME] entry with a "
                "password_hash and a role, or remove the section."
            ]
        for name, entry in users.items():
            if not isinstance(entry, Mapping):
                problems.append(f"[users.{name}] must be a table with password_hash and role.")
                continue
            found = _HASH_SHAPE.match(str(entry.get("password_hash", "")))
            if not found or int(found[1]) < MIN_ITERATIONS:
                problems.append(
                    f"[users.{name}] has no valid password_hash: make one with "
                    f"`python -m streamlit_app.auth` and paste the whole line."
                )
            if entry.get("role", VIEWER) not in ROLES:
                problems.append(f"[users.{name}] has role {str(entry.get('role'))[:20]!r}: use 'viewer' or 'operator'.")
        shapes = {
            int(f[1])
            for e in users.values()
            if isinstance(e, Mapping) and (f := _HASH_SHAPE.match(str(e.get("password_hash", ""))))
        }
        if len(shapes) > 1:  # unequal costs would tell which names exist
            problems.append(
                "The password hashes use different iteration counts: make them all again with "
                "`python -m streamlit_app.auth`."
            )
    elif how == "oidc":
        section = secrets["auth"]
        missing = [k for k in OIDC_REQUIRED if not (isinstance(section, Mapping) and section.get(k))]
        if missing:
            problems.append(f"The [auth] section lacks {', '.join(missing)}: see .streamlit/secrets.toml.example.")
    roles = secrets.get("roles", {})
    operators = roles.get("operators", []) if isinstance(roles, Mapping) else None
    if not isinstance(operators, list | tuple) or not all(isinstance(e, str) for e in operators):
        problems.append("[roles] operators must be a list of e-mail addresses.")
    return problems


def _unknown_user_hash(users: object) -> str:
    """What an unknown name is checked against: as costly as the configured users' own hashes."""
    counts = [
        int(found[1])
        for entry in (users.values() if isinstance(users, Mapping) else ())
        if isinstance(entry, Mapping) and (found := _HASH_SHAPE.match(str(entry.get("password_hash", ""))))
    ]
    iterations = max(set(counts), key=counts.count) if counts else ITERATIONS
    return f"{SCHEME}${iterations}${'0' * 32}${'0' * 64}"


def check_credentials(secrets: Mapping[str, object], name: str, password: str) -> User | None:
    """The user for a name and password, or None; a known and an unknown name cost the same one hash."""
    users = secrets.get("users")
    entry = users.get(name.strip()) if isinstance(users, Mapping) else None
    stored = str(entry.get("password_hash", "")) if isinstance(entry, Mapping) else _unknown_user_hash(users)
    if not _HASH_SHAPE.match(stored):
        stored = _unknown_user_hash(users)
    if not verify_password(password, stored) or not isinstance(entry, Mapping):
        return None
    return User(name.strip(), role_of(secrets, name.strip()) or VIEWER)


def role_of(secrets: Mapping[str, object], name: str) -> str | None:
    """The configured role of a password user now (None once the user has been removed)."""
    users = secrets.get("users")
    entry = users.get(name) if isinstance(users, Mapping) else None
    if not isinstance(entry, Mapping):
        return None
    return entry.get("role", VIEWER) if entry.get("role", VIEWER) in ROLES else VIEWER


def role_for_email(secrets: Mapping[str, object], email: str | None, verified: bool) -> str:
    """Operator only for an e-mail the identity provider has verified and `[roles] operators` lists."""
    operators = (secrets.get("roles") or {}).get("operators", [])
    listed = bool(email) and str(email).lower() in {str(e).lower() for e in operators}
    return OPERATOR if listed and verified is True else VIEWER


@dataclass
class Throttle:
    """Slows sign-in down after repeated failures for a key (a user name, a session).

    After `free` failures each further attempt must wait 2, 4, 8... seconds (at most `cap`) after the
    last failure; a success clears the key. Waiting is enforced by refusing early attempts, never by
    sleeping on the server.
    """

    free: int = 3
    cap: float = 300.0
    _failures: dict[str, tuple[int, float]] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def begin(self, key: str, now: float | None = None) -> float:
        """Start an attempt: 0 when it may go ahead (it is counted as a failure until `succeeded`), else
        the seconds to wait. Checking and counting under one lock, so simultaneous attempts cannot all
        slip through before the first one is counted."""
        now = time.monotonic() if now is None else now
        with self._lock:
            wait = self._wait(key, now)
            if wait == 0.0:
                self._count(key, now)
        return wait

    def wait_seconds(self, key: str, now: float | None = None) -> float:
        with self._lock:
            return self._wait(key, time.monotonic() if now is None else now)

    def failed(self, key: str, now: float | None = None) -> None:
        with self._lock:
            self._count(key, time.monotonic() if now is None else now)

    def _wait(self, key: str, now: float) -> float:
        count, last = self._failures.get(key, (0, 0.0))
        return 0.0 if count < self.free else max(0.0, last + min(self.cap, 2.0 ** (count - self.free + 1)) - now)

    def _count(self, key: str, now: float) -> None:
        self._failures[key] = (self._failures.get(key, (0, 0.0))[0] + 1, now)
        if len(self._failures) > 100_000:  # bounded: forget the oldest half
            for stale in sorted(self._failures, key=lambda k: self._failures[k][1])[:50_000]:
                del self._failures[stale]

    def succeeded(self, key: str) -> None:
        with self._lock:
            self._failures.pop(key, None)


def main() -> None:
    """Print a password hash for `.streamlit/secrets.toml` (the password is read without echo)."""
    password = sys.argv[1] if len(sys.argv) > 1 else getpass.getpass("Password: ")
    print(f'password_hash = "{hash_password(password)}"')


if __name__ == "__main__":
    main()
