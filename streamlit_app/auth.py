"""Who may use the app, and as what: viewers browse, operators may also start refreshes and roll back.

Three modes, from the app's secrets:
- open: no `[users]` and no `[auth]` section. The app says so; it is meant for loopback only.
- password: `[users.NAME]` entries with a `password_hash` (PBKDF2-SHA256, made with
  `python -m streamlit_app.auth`) and a `role` ("viewer" or "operator").
- oidc: Streamlit's own `[auth]` section (st.login); roles from `[roles] operators = [emails]`.

Passwords are never stored or compared in clear; hashes are compared in constant time.
"""

from __future__ import annotations

import getpass
import hashlib
import hmac
import secrets as token_source
import sys
from collections.abc import Mapping
from dataclasses import dataclass

VIEWER, OPERATOR = "viewer", "operator"
ITERATIONS = 600_000
SCHEME = "pbkdf2_sha256"


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
    try:
        scheme, iterations, salt, digest = stored.split("$")
    except ValueError:
        return False
    if scheme != SCHEME:
        return False
    candidate = hash_password(password, salt, int(iterations)).split("$")[-1]
    return hmac.compare_digest(candidate, digest)


def mode(secrets: Mapping[str, object]) -> str:
    if secrets.get("users"):
        return "password"
    if secrets.get("auth"):
        return "oidc"
    return "open"


def check_credentials(secrets: Mapping[str, object], name: str, password: str) -> User | None:
    """The user for a name and password, or None (unknown name and wrong password look the same)."""
    entry = (secrets.get("users") or {}).get(name.strip())
    if not isinstance(entry, Mapping) or not verify_password(password, str(entry.get("password_hash", ""))):
        hash_password(password)  # the same work either way: no timing hint about which names exist
        return None
    role = str(entry.get("role", VIEWER))
    return User(name.strip(), role if role in (VIEWER, OPERATOR) else VIEWER)


def role_for_email(secrets: Mapping[str, object], email: str | None) -> str:
    operators = (secrets.get("roles") or {}).get("operators", [])
    return OPERATOR if email and email.lower() in {str(e).lower() for e in operators} else VIEWER


def main() -> None:
    """Print a password hash for `.streamlit/secrets.toml` (the password is read without echo)."""
    password = sys.argv[1] if len(sys.argv) > 1 else getpass.getpass("Password: ")
    print(f'password_hash = "{hash_password(password)}"')


if __name__ == "__main__":
    main()
