"""Real local receivers for alerts: a chat webhook (HTTP on loopback) and an SMTP server (aiosmtpd)."""

from __future__ import annotations

import json
import ssl
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from email import message_from_bytes, policy
from email.message import EmailMessage
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from tests.servers import free_port


@dataclass
class Inbox:
    """What a receiver got: webhook JSON bodies (with their paths) or e-mails."""

    posts: list[tuple[str, dict]] = field(default_factory=list)
    mails: list[EmailMessage] = field(default_factory=list)
    envelopes: list[tuple[str, list[str]]] = field(default_factory=list)
    encrypted: list[bool] = field(default_factory=list)  # per mail: whether it came over TLS
    arrived: list[float] = field(default_factory=list)  # epoch seconds of each webhook call


@contextmanager
def webhook_receiver(status: int = 200) -> Iterator[tuple[str, Inbox]]:
    """An HTTP server on a free loopback port that records every POST; yields (base URL, inbox)."""
    inbox = Inbox()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
            inbox.arrived.append(time.time())
            inbox.posts.append((self.path, json.loads(body)))
            self.send_response(status)
            self.end_headers()
            self.wfile.write(b"ok")

        def log_message(self, *args) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", inbox
    finally:
        server.shutdown()
        server.server_close()


@contextmanager
def smtp_receiver(
    users: dict[str, str] | None = None, tls: ssl.SSLContext | None = None
) -> Iterator[tuple[int, Inbox]]:
    """aiosmtpd on a free loopback port that records every mail; with `users`, it asks for a login; with
    `tls`, it offers STARTTLS and refuses mail sent without it."""
    from aiosmtpd.controller import Controller
    from aiosmtpd.smtp import AuthResult

    inbox = Inbox()

    class Handler:
        async def handle_DATA(self, server, session, envelope):
            inbox.envelopes.append((envelope.mail_from, list(envelope.rcpt_tos)))
            inbox.encrypted.append(session.ssl is not None)
            inbox.mails.append(message_from_bytes(envelope.original_content or envelope.content, policy=policy.default))
            return "250 OK"

    def authenticate(server, session, envelope, mechanism, auth_data):
        known = users or {}
        login = auth_data.login.decode() if isinstance(auth_data.login, bytes) else auth_data.login
        password = auth_data.password.decode() if isinstance(auth_data.password, bytes) else auth_data.password
        return AuthResult(success=known.get(login) == password)

    options: dict = {"authenticator": authenticate, "auth_required": True, "auth_require_tls": False} if users else {}
    if tls is not None:
        options.update(tls_context=tls, require_starttls=True)
    port = free_port()
    controller = Controller(Handler(), hostname="127.0.0.1", port=port, **options)
    controller.start()
    try:
        yield port, inbox
    finally:
        controller.stop()
