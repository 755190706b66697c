"""Helpers the audience hub's tests share: a real server in a thread, users, signing in.

The server is the real application (ml.hub.app.create_app) served by uvicorn on a free port of
127.0.0.1, reached over real HTTP by httpx or by Chromium.
"""

from __future__ import annotations

import re
import shutil
import socket
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import uvicorn
from teal_testing import SampleRun, failed_steps

from ml.hub.app import create_app
from ml.hub.snapshot import CURRENT, current_folder
from ml.hub.store import HubStore
from ml.settings import Settings

HUB_SECRET = "hub-test-secret-" + "5ec7" * 8
PASSWORD = "correct horse battery staple"
USERS = {"mia": "marketer", "ana": "analyst", "pat": "privacy"}
CHROMIUM = "/usr/bin/chromium"
# Without the background-networking flags Chromium's own connections are refused by this
# machine's closed network and slow every page down.
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
_TOKEN = re.compile(r'name="csrf_token" value="([^"]+)"')


def hub_settings(sample_run: SampleRun, root: Path) -> Settings:
    """Settings for a hub under `root` that serves a copy of the sample run's snapshot.

    The warehouse is a path that does not exist: the hub must never need it. Exports are the
    sample's (read only, for the erasure check of a download); the landing folder is a copy of
    the sample's erasure folder, so filing a request changes nothing shared."""
    sample = sample_run.settings
    snapshots = root / "snapshots"
    if current_folder(sample.hub_snapshots) is None:
        raise AssertionError(
            f"the sample run published no hub snapshot under {sample.hub_snapshots}: its step "
            "hub/snapshot runs only when every step before it succeeded, and these failed: "
            + "; ".join(failed_steps(sample_run.first) or ["none (was it skipped?)"])
        )
    copy_snapshot(sample.hub_snapshots, snapshots)
    landing = root / "landing"
    shutil.copytree(sample.landing / "erasure", landing / "erasure")
    return sample.replace(
        warehouse=root / "no-warehouse" / "warehouse.duckdb",
        exports=sample.exports,
        reports=sample.reports,
        models=sample.models,
        landing=landing,
        hub_snapshots=snapshots,
        hub_database=root / "hub.sqlite",
        hub_secret=HUB_SECRET,
    )


def copy_snapshot(source_root: Path, target_root: Path) -> Path:
    """Copy the current snapshot of `source_root` into `target_root` with its `current` link."""
    folder = current_folder(source_root)
    assert folder is not None, f"the sample run published no hub snapshot under {source_root}"
    target_root.mkdir(parents=True)
    shutil.copytree(folder, target_root / folder.name)
    (target_root / CURRENT).symlink_to(folder.name)
    return target_root / folder.name


def add_users(settings: Settings) -> HubStore:
    store = HubStore(settings.hub_database)
    for name, role in USERS.items():
        store.add_user(name, role, PASSWORD, actor="tests")
    return store


@dataclass
class LiveHub:
    """The hub served by uvicorn in a thread of the test process."""

    settings: Settings
    url: str = ""
    _server: uvicorn.Server | None = field(default=None, repr=False)
    _thread: threading.Thread | None = field(default=None, repr=False)

    def start(self) -> LiveHub:
        listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", 0))
        port = listener.getsockname()[1]
        config = uvicorn.Config(
            create_app(self.settings), log_level="warning", server_header=False, lifespan="off"
        )
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(
            target=self._server.run, kwargs={"sockets": [listener]}, daemon=True
        )
        self._thread.start()
        deadline = time.monotonic() + 30
        while not self._server.started:
            assert time.monotonic() < deadline, "the hub did not start within 30 seconds"
            time.sleep(0.05)
        self.url = f"http://127.0.0.1:{port}"
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.should_exit = True
        if self._thread is not None:
            self._thread.join(timeout=10)

    def client(self) -> httpx.Client:
        """A client with its own cookies that does not follow redirects (tests look at them)."""
        return httpx.Client(base_url=self.url, follow_redirects=False, timeout=60)

    def signed_in(self, username: str, password: str = PASSWORD) -> httpx.Client:
        client = self.client()
        response = sign_in(client, username, password)
        assert response.status_code == 303, response.text[:2000]
        return client


def form_token(html: str) -> str:
    """The CSRF token of the first form on a page."""
    match = _TOKEN.search(html)
    assert match, "the page has no form with a CSRF token"
    return match.group(1)


def sign_in(client: httpx.Client, username: str, password: str) -> httpx.Response:
    token = form_token(client.get("/sign-in").text)
    return client.post(
        "/sign-in",
        data={"username": username, "password": password, "csrf_token": token, "next": "/"},
    )
