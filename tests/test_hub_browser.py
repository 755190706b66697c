"""The audience hub in a real browser: headless Chromium driven by Playwright.

Each role signs in and sees what it may and not what it may not; a marketer downloads an
export (with JavaScript switched off: the core flows need none) and the privacy officer finds
the audit row; the officer files an erasure request and the file is there; five failed
sign-ins lock a name. A screenshot of each main page is saved under data/reports/hub/.

Chromium is Debian's (`make test` installs it when missing): Playwright's own browser download
cannot run here.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest
from hub_testing import (
    CHROMIUM,
    CHROMIUM_ARGS,
    PASSWORD,
    LiveHub,
    add_users,
    hub_settings,
)

from ml.settings import REPO_ROOT

pytestmark = pytest.mark.integration

SCREENSHOTS = REPO_ROOT / "data" / "reports" / "hub"
EXPORT = "lapsed_180d"
MENUS = {
    "mia": ["Overview", "Segments", "Exports"],
    "ana": ["Overview", "Segments", "Exports", "Clusters and models"],
    "pat": ["Overview", "Consent", "Erasure", "Audit log"],
}
# what each user opens, with the screenshot it is saved as
MAIN_PAGES = {
    "mia": {
        "/": "overview",
        "/segments": "segments",
        f"/segments/{EXPORT}": "segment",
        "/exports": "exports",
        f"/exports/{EXPORT}": "export",
    },
    "ana": {"/models": "models", "/segments/high_value_at_risk": "segment-analyst"},
    "pat": {
        "/privacy/consent": "privacy-consent",
        "/privacy/erasure": "privacy-erasure",
        "/privacy/erasure/new": "privacy-erasure-request",
        "/privacy/audit": "privacy-audit",
    },
}
REFUSED = {
    "mia": ["/models", "/privacy/audit", "/privacy/erasure/new"],
    "ana": ["/privacy/consent", "/privacy/audit"],
    "pat": ["/segments", f"/exports/{EXPORT}", "/models"],
}


@pytest.fixture(scope="module")
def hub(sample_run, tmp_path_factory):
    settings = hub_settings(sample_run, tmp_path_factory.mktemp("hub_browser"))
    add_users(settings).add_user("lou", "marketer", PASSWORD, actor="tests")
    live = LiveHub(settings).start()
    yield live
    live.stop()


@pytest.fixture(scope="module")
def chromium_browser():
    if not Path(CHROMIUM).exists():
        pytest.fail(
            f"the hub's browser tests need Debian's chromium at {CHROMIUM}: run `make test` "
            "(it installs it as root) or `sudo apt-get install -y chromium`"
        )
    from playwright.sync_api import sync_playwright

    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


def new_page(browser, **options):
    context = browser.new_context(viewport={"width": 1280, "height": 800}, **options)
    return context.new_page()


def sign_in(page, hub: LiveHub, username: str, password: str = PASSWORD) -> None:
    page.goto(f"{hub.url}/sign-in")
    page.get_by_label("User name").fill(username)
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_load_state()


def screenshot(page, name: str) -> None:
    page.screenshot(path=SCREENSHOTS / f"{name}.png", full_page=True)


@pytest.mark.parametrize("username", ["mia", "ana", "pat"])
def test_each_role_sees_what_it_may_and_not_what_it_may_not(chromium_browser, hub, username):
    page = new_page(chromium_browser)
    if username == "mia":
        page.goto(f"{hub.url}/exports")  # a stranger is sent to sign in first
        assert page.url == f"{hub.url}/sign-in?next=/exports"
        screenshot(page, "sign-in")
    sign_in(page, hub, username)
    assert page.url == f"{hub.url}/"
    menu = page.get_by_role("navigation", name="Main menu").get_by_role("link")
    assert menu.all_inner_texts() == MENUS[username]
    for path, name in MAIN_PAGES[username].items():
        response = page.goto(hub.url + path)
        assert response.status == 200, path
        assert page.get_by_role("heading", level=1).inner_text()
        assert "Data refreshed" in page.locator("p.refreshed").inner_text()
        screenshot(page, name)
    for path in REFUSED[username]:
        response = page.goto(hub.url + path)
        assert response.status == 403, path
        assert page.get_by_role("heading", level=1).inner_text() == "Not for your role"
    if username == "ana":
        page.goto(f"{hub.url}/segments/{EXPORT}")
        page.get_by_text("Compiled SQL").click()
        assert "days_since_last_order" in page.locator("pre").last.inner_text()
    if username == "mia":
        page.goto(f"{hub.url}/segments/{EXPORT}")
        assert page.get_by_text("Compiled SQL").count() == 0
        assert page.get_by_text("days since last order is at least 180").is_visible()


def test_a_download_without_javascript_is_found_in_the_audit_log(chromium_browser, hub, sample_run):
    folder = sample_run.settings.exports / EXPORT / "latest"
    manifest = json.loads((folder / "manifest.json").read_text(encoding="utf-8"))
    day = folder.resolve().name
    marketer = new_page(chromium_browser, java_script_enabled=False, accept_downloads=True)
    sign_in(marketer, hub, "mia")
    marketer.goto(f"{hub.url}/exports/{EXPORT}")
    with marketer.expect_download() as started:
        marketer.get_by_role("button", name=f"Download audience.csv of {day}").click()
    download = started.value
    assert download.suggested_filename == f"{EXPORT}_{day}_audience.csv"
    sha256 = hashlib.sha256(Path(download.path()).read_bytes()).hexdigest()
    assert sha256 == manifest["files"]["audience.csv"]["sha256"]

    officer = new_page(chromium_browser)
    sign_in(officer, hub, "pat")
    officer.goto(f"{hub.url}/privacy/audit")
    officer.get_by_label("Show").select_option("download")
    officer.get_by_role("button", name="Filter").click()
    rows = officer.locator("table.audit tbody tr")
    assert rows.count() >= 1
    row = rows.first.inner_text()
    for expected in ("hub", "download", "mia", EXPORT, f"{EXPORT}/{day}/audience.csv", sha256):
        assert expected in row
    screenshot(officer, "privacy-audit-download")


def test_an_erasure_request_filed_in_the_browser_is_a_landing_file(chromium_browser, hub):
    erasure = hub.settings.landing / "erasure"
    before = set(erasure.glob("*.csv"))
    page = new_page(chromium_browser)
    sign_in(page, hub, "pat")
    page.goto(f"{hub.url}/privacy/erasure")
    page.get_by_role("link", name="File an erasure request").click()
    page.get_by_label("The person's email address or crm id").fill("C1004242")
    page.get_by_label("I have checked that the person asking is who they say they are.").check()
    page.get_by_role("button", name="File the request").click()
    status = page.get_by_role("status").inner_text()
    assert status.startswith("Request ER") and "filed as erasure/erasure_" in status
    request_id = status.split()[1]
    (new,) = set(erasure.glob("*.csv")) - before
    assert new.name.endswith(f"_hub_{request_id}.csv")
    assert new.read_text(encoding="utf-8").splitlines()[1].startswith(f"{request_id},C1004242,")
    assert "C1004242" not in page.content()
    screenshot(page, "privacy-erasure-filed")


def test_five_failed_sign_ins_lock_the_name(chromium_browser, hub):
    page = new_page(chromium_browser)
    for attempt in range(1, 6):
        sign_in(page, hub, "lou", "not the password")
        alert = page.get_by_role("alert").inner_text()
        if attempt < 5:
            assert alert.startswith("Wrong user name or password.")
    assert "this user name is locked until" in alert
    sign_in(page, hub, "lou", PASSWORD)
    assert page.url.startswith(f"{hub.url}/sign-in")
    assert "locked until" in page.get_by_role("alert").inner_text()
    screenshot(page, "sign-in-locked")


def test_signing_in_and_out_works_from_the_keyboard(chromium_browser, hub):
    from playwright.sync_api import expect

    page = new_page(chromium_browser)
    page.goto(f"{hub.url}/sign-in")
    # the user name field takes the focus by itself (autofocus applies once the page is shown)
    expect(page.locator("#username")).to_be_focused()
    page.keyboard.type("ana")
    page.keyboard.press("Tab")
    page.keyboard.type(PASSWORD)
    # wait for the navigation each key press starts (registered before the key is pressed)
    with page.expect_navigation(url=f"{hub.url}/"):
        page.keyboard.press("Enter")
    page.get_by_role("button", name="Sign out").focus()
    with page.expect_navigation(url=f"{hub.url}/sign-in?signed_out=true"):
        page.keyboard.press("Enter")
    page.goto(f"{hub.url}/models")
    assert page.url == f"{hub.url}/sign-in?next=/models"
