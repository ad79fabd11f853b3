"""Whether an address or a request stays on this machine: shared by the app's open mode and the guarded
Dagster webserver, which both refuse what another site's page (or another machine) could send."""

from __future__ import annotations

import ipaddress


def host_name(host: str) -> str:
    """The name in a Host header, without its port ('[::1]:8501' -> '::1')."""
    if host.startswith("["):
        return host[1:].split("]", 1)[0]
    return host.rsplit(":", 1)[0] if host.count(":") == 1 else host


def is_loopback(address: str | None) -> bool:
    """Whether a listen address (or a host name) only reaches this machine (unix sockets included)."""
    if not address:
        return False  # unset means every interface
    if address.startswith("unix://") or address == "localhost":
        return True
    try:
        return ipaddress.ip_address(address.strip("[]")).is_loopback
    except ValueError:
        return False


def from_own_loopback_page(host: str | None, origin: str | None) -> bool:
    """A request asked for by a loopback name (no DNS rebinding) from a page of the same origin.

    `None` means the header is unknown (not sent, or not exposed by the server): it does not count
    against the request; an empty Host does.
    """
    if host is not None and not is_loopback(host_name(host)):
        return False
    return origin is None or origin in (f"http://{host}", f"https://{host}")
