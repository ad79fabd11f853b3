"""Driving the app in headless Chromium: launch, open a page, wait until Streamlit is done, take screenshots.

The `browser` fixture (tests/conftest.py) launches Debian's chromium through this module. Locators built
here are unique by construction: sidebar links are looked up inside the sidebar navigation, headings
inside the main area by their exact name, widgets by their `key=` (rendered as the class `st-key-<key>`).
"""

from __future__ import annotations

import shutil
import time
from contextlib import contextmanager
from pathlib import Path

from tests.servers import ROOT

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
ARTIFACTS = ROOT / "test-artifacts"
VIEWPORT = {"width": 1400, "height": 1000}
LAUNCH_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--disable-dev-shm-usage",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
APP_IDLE = "[data-testid='stApp'][data-test-script-state='notRunning']"
SIDEBAR_NAV = "[data-testid='stSidebarNav']"
MAIN = "[data-testid='stMain']"


@contextmanager
def launch():
    """Debian's chromium driven by Playwright (never `playwright install`). Chromium writes under $HOME."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=LAUNCH_ARGS)
        try:
            yield browser
        finally:
            browser.close()


class ScriptRuns:
    """How the app's script runs go, read from the messages the Streamlit server sends over the page's websocket.

    The page's own `data-test-script-state` is not enough: it reads "notRunning" before a click's rerun
    has begun, and between a fragment run that calls `st.rerun()` and the full rerun that follows, which
    is when a click is lost (the rerun the fragment asked for replaces the page the click asked for).
    """

    def __init__(self, page):
        self.page = page
        self.socket = None
        self.reset()
        page.on("websocket", self._watch)

    def reset(self) -> None:
        self.running = False
        self.last_finish = None

    @property
    def idle(self) -> bool:
        """No run under way, and the last one was a full run of the page that ended (not a fragment's run,
        not a run cut short for a rerun), so nothing reruns on its own."""
        from streamlit.proto.ForwardMsg_pb2 import ForwardMsg

        return not self.running and self.last_finish == ForwardMsg.FINISHED_SUCCESSFULLY

    def _watch(self, socket) -> None:
        self.socket = socket
        self.reset()
        socket.on("framereceived", self._frame)

    def _frame(self, payload) -> None:
        from streamlit.proto.ForwardMsg_pb2 import ForwardMsg

        if isinstance(payload, str):
            return
        message = ForwardMsg()
        message.ParseFromString(payload)
        kind = message.WhichOneof("type")
        if kind == "new_session":  # sent when a run (of the page or of a fragment) starts
            self.running = True
        elif kind == "script_finished":
            self.running, self.last_finish = False, message.script_finished

    def wait_idle(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout / 1000
        while not self.idle:
            left_ms = (deadline - time.monotonic()) * 1000
            if left_ms <= 0:
                raise TimeoutError(
                    f"the app did not finish its script run within {timeout / 1000:.0f} s "
                    f"(running={self.running}, last finish status={self.last_finish})"
                )
            if self.socket is None:
                self.page.wait_for_event("websocket", timeout=left_ms)
            else:
                self.socket.wait_for_event("framereceived", timeout=left_ms)


_RUNS: dict = {}  # page -> ScriptRuns


def open_app(browser, url: str, viewport: dict | None = None):
    """A new page on the app, following its script runs (see `settle`)."""
    page = browser.new_page(viewport=viewport or VIEWPORT)
    _RUNS[page] = ScriptRuns(page)
    visit(page, url)
    return page


def visit(page, url: str) -> None:
    """Load `url` in a page made by `open_app`: a new session, so what was known of the old one is dropped."""
    _RUNS[page].reset()
    page.goto(url)


def settle(page, timeout: float = 60_000) -> None:
    """Wait until Streamlit has finished running the page and nothing reruns on its own.

    Call it after waiting for something the action shows (a heading of the new page, a result), so the
    run being waited for is the one the action started. Runs of a fragment (`run_every` polling) do not
    count: on a page that polls, it waits until the page has stopped polling and rerun in full.
    """
    _RUNS[page].wait_idle(timeout)
    page.locator(APP_IDLE).wait_for(state="attached", timeout=timeout)  # the page has drawn that run


def nav_link(page, title: str):
    """The sidebar navigation's link to a page (not a page link or text in the main area)."""
    return page.locator(SIDEBAR_NAV).get_by_role("link", name=title, exact=True)


def heading(page, name: str):
    """A heading of the main area with exactly this name (titles and subheaders)."""
    return page.locator(MAIN).get_by_role("heading", name=name, exact=True)


def keyed(page, key: str):
    """The element made with Streamlit's `key=key`."""
    return page.locator(f".st-key-{key}")


def shot(page, name: str) -> Path:
    ARTIFACTS.mkdir(exist_ok=True)
    path = ARTIFACTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    return path


SIDEBAR_SETTLED = """([narrow]) => {
  const bar = document.querySelector("[data-testid='stSidebar']");
  if (!bar) return true;
  const right = bar.getBoundingClientRect().right;
  const still = window.__recomartSidebarRight === right;
  window.__recomartSidebarRight = right;
  return still && (!narrow || right <= 1);
}"""


def at_width(page, width: int, height: int = 1000) -> None:
    """Resize the window and wait until the sidebar has finished moving (below 768 px Streamlit slides it away)."""
    page.set_viewport_size({"width": width, "height": height})
    page.wait_for_function(SIDEBAR_SETTLED, arg=[width < 768], timeout=30_000)


def whole_page(page, path: Path, width: int) -> Path:
    """A screenshot of the whole page at `width`: the app scrolls inside its main area, so the window is made as
    tall as the page first."""
    at_width(page, width)
    tall = page.locator("[data-testid='stMainBlockContainer']").evaluate("e => e.scrollHeight")
    at_width(page, width, min(int(tall) + 150, 12_000))
    path.parent.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(path), full_page=True)
    return path
