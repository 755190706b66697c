"""The audience hub over real HTTP, without a browser: every role rule, sessions, CSRF, direct
file URLs and path traversal, downloads and their audit rows, security headers, and no
personal data in any page.

The hub serves a copy of the snapshot the shared sample run published at its end; the
expected figures are read from that run's warehouse and export manifests.
"""

from __future__ import annotations

import hashlib
import json
import re
from itertools import pairwise
from pathlib import Path

import duckdb
import pytest
from hub_testing import PASSWORD, USERS, LiveHub, add_users, form_token, hub_settings, sign_in

pytestmark = pytest.mark.integration

EXPORT = "lapsed_180d"  # the sample's email export: audience.csv only
PAGES = {
    "/": {"marketer", "analyst", "privacy"},
    "/segments": {"marketer", "analyst"},
    f"/segments/{EXPORT}": {"marketer", "analyst"},
    "/exports": {"marketer", "analyst"},
    f"/exports/{EXPORT}": {"marketer", "analyst"},
    "/models": {"analyst"},
    "/charts/rfm_grid.png": {"analyst"},
    "/privacy/consent": {"privacy"},
    "/privacy/consent?customer_id=cus_0000000000000000": {"privacy"},
    "/privacy/erasure": {"privacy"},
    "/privacy/erasure/new": {"privacy"},
    "/privacy/audit": {"privacy"},
}
ROLE_USER = {role: name for name, role in USERS.items()}
SECURITY_HEADERS = {
    "content-security-policy": "default-src 'none'; style-src 'self'; img-src 'self' data:; "
    "form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
    "x-content-type-options": "nosniff",
    "x-frame-options": "DENY",
    "referrer-policy": "no-referrer",
    "cache-control": "no-store",
}
EMAIL = re.compile(r"[\w.+-]+@[\w-]+(?:\.[\w-]+)+")
PHONE = re.compile(r"\+\d{7,15}")


@pytest.fixture(scope="module")
def hub(sample_run, tmp_path_factory):
    settings = hub_settings(sample_run, tmp_path_factory.mktemp("hub_server"))
    add_users(settings)
    live = LiveHub(settings).start()
    yield live
    live.stop()


@pytest.fixture(scope="module")
def clients(hub):
    return {role: hub.signed_in(name) for name, role in USERS.items()}


@pytest.fixture(scope="module")
def truth(sample_run):
    """What the sample run wrote, read from its warehouse and export folders."""
    with duckdb.connect(str(sample_run.warehouse), read_only=True) as connection:
        segments = sorted(
            name
            for (name,) in connection.execute(
                "select segment_name from segments.segment_definitions"
            ).fetchall()
        )
        people = connection.execute(
            "select lower(email), phone, lower(first_name || ' ' || last_name) "
            "from marts.dim_customers"
        ).fetchall()
    folder = sample_run.settings.exports / EXPORT / "latest"
    manifest = json.loads((folder / "manifest.json").read_text(encoding="utf-8"))
    return {
        "segments": segments,
        "manifest": manifest,
        "day": folder.resolve().name,
        "emails": {p[0] for p in people if p[0]},
        "phones": {p[1] for p in people if p[1]},
        "names": {p[2] for p in people if p[2]},
    }


def download_form(client, path: str) -> tuple[str, str]:
    """The action and CSRF token of the first download button on an export page."""
    html = client.get(path).text
    action = re.search(r'<form method="post" action="(/exports/[^"]+)" class="inline">', html)
    assert action, "the export page has no download button"
    return action.group(1), form_token(html[action.start() :])


# --- without a session -------------------------------------------------------------------------


@pytest.mark.parametrize("path", [*PAGES, f"/exports/{EXPORT}/2026-11-20/audience.csv", "/x"])
def test_every_page_but_sign_in_sends_a_stranger_to_sign_in(hub, path):
    response = hub.client().get(path)
    assert response.status_code == 303
    assert response.headers["location"].startswith("/sign-in")
    assert response.content == b""


def test_a_download_link_is_useless_without_a_session(hub, clients, truth):
    action, token = download_form(clients["marketer"], f"/exports/{EXPORT}")
    stranger = hub.client()
    response = stranger.post(action, data={"csrf_token": token})
    assert response.status_code == 303
    assert response.headers["location"] == "/sign-in"
    assert truth["manifest"]["files"]["audience.csv"]["sha256"] not in response.text


def test_the_sign_in_page_and_the_stylesheet_need_no_session(hub):
    client = hub.client()
    page = client.get("/sign-in")
    assert page.status_code == 200
    assert '<input id="password" name="password" type="password"' in page.text
    assert client.get("/static/hub.css").headers["content-type"].startswith("text/css")


# --- roles -------------------------------------------------------------------------------------


@pytest.mark.parametrize("role", ["marketer", "analyst", "privacy"])
def test_each_role_sees_its_pages_and_is_refused_the_others(clients, role):
    outcome = {path: clients[role].get(path).status_code for path in PAGES}
    expected = {path: 200 if role in roles else 403 for path, roles in PAGES.items()}
    assert outcome == expected


def test_a_refused_page_names_the_role_and_shows_nothing_of_the_page(clients):
    response = clients["marketer"].get("/privacy/audit")
    assert response.status_code == 403
    assert "You are signed in as a marketer, and this page is not part of that role" in (
        response.text
    )
    assert "Audit log" not in response.text.split("<main")[1]


def test_definitions_are_for_analysts_only(clients):
    analyst = clients["analyst"].get(f"/segments/{EXPORT}").text
    marketer = clients["marketer"].get(f"/segments/{EXPORT}").text
    assert "<summary>Compiled SQL</summary>" in analyst
    assert "days_since_last_order" in analyst  # the YAML
    assert "<summary>Compiled SQL</summary>" not in marketer
    assert "select" not in marketer.lower().split("<main")[1]
    # both read the rules in words
    for page in (analyst, marketer):
        assert '<li class="depth-0">days since last order is at least 180</li>' in page


def test_menus_offer_only_what_the_role_may_open(clients):
    def menu(html: str) -> list[str]:
        navigation = html.split('<nav aria-label="Main menu">', 1)[1].split("</nav>", 1)[0]
        return re.findall(r'<a href="([^"]+)"', navigation)

    menus = {role: menu(client.get("/").text) for role, client in clients.items()}
    assert menus == {
        "marketer": ["/", "/segments", "/exports"],
        "analyst": ["/", "/segments", "/exports", "/models"],
        "privacy": ["/", "/privacy/consent", "/privacy/erasure", "/privacy/audit"],
    }


def test_the_segment_list_is_the_sample_runs(clients, truth):
    html = clients["marketer"].get("/segments").text
    listed = re.findall(r'<th scope="row"><a href="/segments/([a-z0-9_]+)">', html)
    assert listed == truth["segments"]
    assert "Data refreshed <strong>" in html


def test_an_unknown_segment_or_export_is_a_page_that_says_so(clients):
    for path in ("/segments/no_such_segment", "/exports/no_such_export"):
        response = clients["analyst"].get(path)
        assert response.status_code == 404
        assert "The data has no" in response.text


# --- files -------------------------------------------------------------------------------------


def test_a_download_hands_out_the_manifests_bytes_and_is_audited(hub, clients, truth):
    manifest = truth["manifest"]
    action, token = download_form(clients["marketer"], f"/exports/{EXPORT}")
    assert action == f"/exports/{EXPORT}/{truth['day']}/audience.csv"
    response = clients["marketer"].post(action, data={"csrf_token": token})
    assert response.status_code == 200
    assert (
        hashlib.sha256(response.content).hexdigest() == manifest["files"]["audience.csv"]["sha256"]
    )
    assert len(response.content) == manifest["files"]["audience.csv"]["bytes"]
    assert response.headers["content-disposition"] == (
        f'attachment; filename="{EXPORT}_{truth["day"]}_audience.csv"'
    )
    for name, value in SECURITY_HEADERS.items():
        assert response.headers[name] == value
    from ml.hub.store import HubStore

    rows = [
        r for r in HubStore(hub.settings.hub_database).audit_rows() if r["action"] == "download"
    ]
    newest = rows[0]
    assert (newest["username"], newest["role"], newest["target"]) == ("mia", "marketer", EXPORT)
    assert newest["files"] == [f"{EXPORT}/{truth['day']}/audience.csv"]
    assert newest["row_count"] == manifest["files"]["audience.csv"]["rows"]
    assert newest["details"]["sha256"] == manifest["files"]["audience.csv"]["sha256"]
    assert newest["run_id"] == manifest["run_id"]
    # and the privacy officer finds it on the audit page
    audit = clients["privacy"].get("/privacy/audit?action=download").text
    assert manifest["files"]["audience.csv"]["sha256"] in audit
    assert f"<code>{EXPORT}/{truth['day']}/audience.csv</code>" in audit


def test_downloads_need_the_download_role_and_the_sessions_form_token(clients, truth):
    action, token = download_form(clients["analyst"], f"/exports/{EXPORT}")
    assert clients["analyst"].post(action, data={"csrf_token": token}).status_code == 200
    assert clients["analyst"].post(action, data={"csrf_token": "forged"}).status_code == 400
    assert clients["analyst"].post(action).status_code == 400
    # another user's token is not this session's
    _, marketer_token = download_form(clients["marketer"], f"/exports/{EXPORT}")
    assert clients["analyst"].post(action, data={"csrf_token": marketer_token}).status_code == 400
    privacy_token = form_token(clients["privacy"].get("/").text)
    assert clients["privacy"].post(action, data={"csrf_token": privacy_token}).status_code == 403


def test_a_form_from_another_site_is_refused(clients):
    action, token = download_form(clients["marketer"], f"/exports/{EXPORT}")
    response = clients["marketer"].post(
        action, data={"csrf_token": token}, headers={"origin": "https://evil.example"}
    )
    assert response.status_code == 403
    assert "only accepts forms sent from its own pages" in response.text


def test_a_files_address_typed_or_shared_gives_no_file(clients, truth):
    path = f"/exports/{EXPORT}/{truth['day']}/audience.csv"
    response = clients["marketer"].get(path)
    assert response.status_code == 405
    assert "Download button" in response.text
    assert response.headers["content-type"].startswith("text/html")


@pytest.mark.parametrize(
    "path",
    [
        f"/exports/{EXPORT}/2026-11-20/manifest.json",  # listed, but not a download
        f"/exports/{EXPORT}/2026-11-20/..%2F..%2F..%2Fsnapshot.json",
        f"/exports/{EXPORT}/..%2F..%2Ftables/segments.parquet",
        "/exports/..%2F..%2F..%2F..%2Fhub.sqlite/2026-11-20/audience.csv",
        f"/exports/{EXPORT}/2026-11-20/%2Fetc%2Fpasswd",
        f"/exports/{EXPORT}/2026-11-20/google_customer_match.csv",  # another export's file
    ],
)
def test_no_download_reaches_a_file_the_snapshot_does_not_list(clients, path):
    token = form_token(clients["analyst"].get("/").text)
    response = clients["analyst"].post(path, data={"csrf_token": token})
    assert response.status_code == 404
    assert response.headers["content-type"].startswith("text/html")
    assert b"PAR1" not in response.content and b"root:" not in response.content


@pytest.mark.parametrize(
    "path",
    [
        "/charts/..%2Fsnapshot.json",
        "/charts/..%2F..%2Fcurrent%2Fsnapshot.json",
        "/charts/model.joblib",
        "/static/..%2Fapp.py",
        "/static/%2E%2E/templates/base.html",
        "/static/..%2F..%2F..%2Fsettings.py",
        "/../../ml/settings.py",
        "/segments/..%2F..%2Fexports",
    ],
)
def test_path_traversal_finds_nothing(clients, path):
    response = clients["analyst"].get(path)
    assert response.status_code == 404, (path, response.status_code)
    assert b"import " not in response.content and b'"published_at"' not in response.content


# --- sessions ----------------------------------------------------------------------------------


def test_the_session_cookie_is_signed_http_only_and_same_site(hub):
    client = hub.client()
    response = sign_in(client, "mia", PASSWORD)
    cookie = next(c for c in response.headers.get_list("set-cookie") if "teal_hub_session=" in c)
    assert "HttpOnly" in cookie and "SameSite=lax" in cookie and "Path=/" in cookie
    value = client.cookies["teal_hub_session"]
    forged = hub.client()
    forged.cookies.set(
        "teal_hub_session", value[:-2] + ("A" if value[-2] != "A" else "B") + value[-1]
    )
    assert forged.get("/segments").status_code == 303
    unsigned = hub.client()
    unsigned.cookies.set("teal_hub_session", value.rsplit(".", 1)[0])
    assert unsigned.get("/segments").status_code == 303


def test_signing_out_ends_the_session_for_good(hub):
    client = hub.signed_in("ana")
    cookie = client.cookies["teal_hub_session"]
    token = form_token(client.get("/").text)
    response = client.post("/sign-out", data={"csrf_token": token})
    assert (response.status_code, response.headers["location"]) == (303, "/sign-in?signed_out=true")
    replay = hub.client()
    replay.cookies.set("teal_hub_session", cookie)
    assert replay.get("/segments").status_code == 303


def test_five_failed_sign_ins_lock_the_name_even_for_the_right_password(hub):
    from ml.hub.store import HubStore

    HubStore(hub.settings.hub_database).add_user("lou", "marketer", PASSWORD, actor="tests")
    client = hub.client()
    texts = [sign_in(client, "lou", "wrong password!").text for _ in range(5)]
    assert "4 more failed tries and this user name is locked" in texts[0]
    assert "1 more failed try and this user name is locked" in texts[3]
    assert "this user name is locked until" in texts[4]
    locked = sign_in(client, "lou", PASSWORD)
    assert locked.status_code == 403
    assert "python -m ml.hub users unlock NAME" in locked.text
    # a name nobody has is locked the same way, so locking tells nobody who exists
    for _ in range(5):
        sign_in(client, "nobody", "wrong password!")
    assert sign_in(client, "nobody", PASSWORD).status_code == 403


def test_the_sign_in_form_needs_its_token(hub):
    client = hub.client()
    client.get("/sign-in")
    response = client.post("/sign-in", data={"username": "mia", "password": PASSWORD})
    assert response.status_code == 400
    assert "teal_hub_session" not in client.cookies


def test_after_sign_in_the_hub_goes_only_to_its_own_pages(hub):
    client = hub.client()
    for target, expected in (
        ("/exports", "/exports"),
        ("https://evil.example/", "/"),
        ("//evil.example", "/"),
    ):
        client.cookies.clear()
        token = form_token(client.get("/sign-in").text)
        response = client.post(
            "/sign-in",
            data={"username": "mia", "password": PASSWORD, "csrf_token": token, "next": target},
        )
        assert response.headers["location"] == expected


# --- headers and personal data -----------------------------------------------------------------


def test_every_response_carries_the_security_headers(hub, clients):
    responses = [
        hub.client().get("/sign-in"),
        hub.client().get("/segments"),
        clients["marketer"].get("/exports"),
        clients["marketer"].get("/privacy/audit"),
        clients["marketer"].get("/nowhere"),
        clients["analyst"].get("/charts/rfm_grid.png"),
    ]
    for response in responses:
        for name, value in SECURITY_HEADERS.items():
            assert response.headers.get(name) == value, (response.url, name)
        assert "server" not in response.headers


def test_no_page_shows_a_customers_personal_data(hub, clients, truth, sample_run):
    officer = clients["privacy"]
    # a request filed with a real customer's email must not show it anywhere afterwards
    email = sorted(truth["emails"])[0]
    token = form_token(officer.get("/privacy/erasure/new").text)
    filed = officer.post(
        "/privacy/erasure/new", data={"subject": email, "confirmed": "yes", "csrf_token": token}
    )
    assert filed.status_code == 303
    customer = duckdb.connect(str(sample_run.warehouse), read_only=True)
    with customer:
        (someone,) = customer.execute(
            "select customer_id from marts.fct_consent_events where customer_id is not null "
            "order by consent_event_id limit 1"
        ).fetchone()
    pages = {
        role: [*PAGES, *(f"/segments/{name}" for name in truth["segments"])]
        for role in ("marketer", "analyst")
    }
    pages["privacy"] = [
        *PAGES,
        f"/privacy/consent?customer_id={someone}",
        filed.headers["location"],
    ]
    for role, paths in pages.items():
        for path in paths:
            response = clients[role].get(path)
            if not response.headers["content-type"].startswith("text/html"):
                continue
            text = response.text.lower()
            addresses = {a for a in EMAIL.findall(text) if not a.endswith("@teal.example")}
            assert addresses == set(), (role, path)  # only the segment owners' team addresses
            assert set(PHONE.findall(text)) & truth["phones"] == set(), (role, path)
            words = re.findall(r"[^\W\d_][\w'-]*", text)
            pairs = {f"{first} {second}" for first, second in pairwise(words)}
            assert pairs & truth["names"] == set(), (role, path)


def test_the_erasure_request_becomes_a_landing_file_and_an_audit_row(hub, clients, truth):
    officer = clients["privacy"]
    email = sorted(truth["emails"])[1]
    before = set((hub.settings.landing / "erasure").glob("*.csv"))
    token = form_token(officer.get("/privacy/erasure/new").text)
    response = officer.post(
        "/privacy/erasure/new", data={"subject": email, "confirmed": "yes", "csrf_token": token}
    )
    (new,) = set((hub.settings.landing / "erasure").glob("*.csv")) - before
    request_id = response.headers["location"].rsplit("=", 1)[1]
    lines = new.read_text(encoding="utf-8").splitlines()
    assert lines[0] == "request_id,subject,requested_at"
    assert lines[1].startswith(f"{request_id},{email},")
    page = officer.get(response.headers["location"]).text
    assert f"Request <strong>{request_id}</strong> filed as <code>erasure/{new.name}</code>" in page
    assert "waiting for the next run" in page
    from ml.hub.store import HubStore

    row = next(
        r for r in HubStore(hub.settings.hub_database).audit_rows() if r["target"] == request_id
    )
    assert (row["action"], row["username"], row["files"]) == (
        "erasure_filed",
        "pat",
        [f"erasure/{new.name}"],
    )
    assert email not in json.dumps(row)
    # a marketer cannot file one, and a subject that is neither an email nor a crm id is refused
    marketer_token = form_token(clients["marketer"].get("/").text)
    refused = clients["marketer"].post(
        "/privacy/erasure/new",
        data={"subject": email, "confirmed": "yes", "csrf_token": marketer_token},
    )
    assert refused.status_code == 403
    token = form_token(officer.get("/privacy/erasure/new").text)
    wrong = officer.post(
        "/privacy/erasure/new",
        data={"subject": "not an identifier", "confirmed": "yes", "csrf_token": token},
    )
    assert wrong.status_code == 400
    assert "not an identifier" not in wrong.text
    assert set((hub.settings.landing / "erasure").glob("*.csv")) - before == {new}


def test_the_hub_never_needed_the_warehouse(hub):
    assert not Path(hub.settings.warehouse).exists()
    assert not Path(hub.settings.warehouse).parent.exists()
