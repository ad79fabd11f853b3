"""The Dagster webserver as the launchers start it: GraphQL only as the UI and the app send it.

Dagster OSS has no sign-in and accepts GraphQL mutations as a GET or a form post, so any web page
open in a browser on the same computer could start runs on a webserver bound to 127.0.0.1. This
entry point is `dagster-webserver` with the same options, behind a guard that refuses, on /graphql:
anything but a JSON POST or the UI's websocket, a request whose Host is not a loopback name (DNS
rebinding), and a request from another origin. Pages, assets and the UI itself work as before.

    python -m dagster_project.guarded_webserver -h 127.0.0.1 -p 3000 -m dagster_project.definitions
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

from dagster_project import loopback

Scope = MutableMapping[str, Any]
ASGIApp = Callable[[Scope, Callable, Callable], Awaitable[None]]


def refused(scope: Scope) -> bool:
    """Whether a request to the webserver could have come from another site's page."""
    if scope["type"] not in ("http", "websocket") or not scope.get("path", "").endswith("/graphql"):
        return False
    headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope.get("headers", [])}
    if not loopback.from_own_loopback_page(headers.get("host", ""), headers.get("origin")):
        return True
    if scope["type"] == "websocket":
        return False
    method = scope.get("method", "GET")
    if method == "POST":
        return not headers.get("content-type", "").lower().startswith("application/json")
    return method != "GET" or bool(scope.get("query_string"))  # GET: the GraphiQL page only, no query


def guard(app: ASGIApp) -> ASGIApp:
    """Wrap an ASGI app: refused requests get 403 (or a closed websocket) and never reach Dagster."""

    async def guarded(scope: Scope, receive: Callable, send: Callable) -> None:
        if not refused(scope):
            await app(scope, receive, send)
        elif scope["type"] == "websocket":
            await send({"type": "websocket.close", "code": 1008})
        else:
            await send({"type": "http.response.start", "status": 403, "headers": [(b"content-type", b"text/plain")]})
            await send({"type": "http.response.body", "body": b"Refused: GraphQL only as the Dagster UI sends it."})

    return guarded


def main() -> None:
    """`dagster-webserver` with its own command line, serving the guarded app."""
    import dagster_webserver.cli as webserver_cli

    build = webserver_cli.create_app_from_workspace_process_context
    webserver_cli.create_app_from_workspace_process_context = lambda *a, **k: guard(build(*a, **k))
    webserver_cli.main()


if __name__ == "__main__":
    main()
