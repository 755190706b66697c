"""The audience hub's parts that need no pipeline run: rules in words, the size chart, users,
sign-in lock-out and sessions, filing an erasure request, the snapshot's failures, settings."""

from __future__ import annotations

import sqlite3
import subprocess
import sys
from datetime import UTC, date, datetime, timedelta

import duckdb
import pytest

from ml.hub.charts import nice_ceiling, size_chart
from ml.hub.erasure import ErasureRequestError, file_request, next_request_id
from ml.hub.roles import PERMISSIONS, allowed
from ml.hub.snapshot import CURRENT, SnapshotError, current_folder, publish_snapshot
from ml.hub.store import MAX_FAILURES, HubStore, UserError
from ml.hub.web import local_path
from ml.hub.words import describe_rule
from ml.settings import REPO_ROOT, Settings, SettingsError

PASSWORD = "correct horse battery staple"

# --- rules in words ----------------------------------------------------------------------------


def test_field_conditions_read_as_sentences():
    rules = {
        "all": [
            {"field": "age_years", "operator": "between", "value": [30, 45]},
            {"field": "rfm_segment", "operator": "in", "value": ["At Risk", "Can't Lose Them"]},
            {"field": "region", "operator": "=", "value": "London"},
            {"field": "days_since_last_order", "operator": ">=", "value": 180},
            {"field": "orders_30d", "operator": ">", "value": 3.0},
            {"field": "gender", "operator": "not in", "value": ["U"]},
            {"field": "is_outlier", "operator": "!=", "value": True},
            {"field": "birth_date", "operator": "is null"},
            {"field": "loyalty_id", "operator": "is not null"},
            {"field": "tenure_days", "operator": "<", "value": 30},
        ]
    }
    assert describe_rule(rules) == [
        (0, "All of these:"),
        (1, "age years is between 30 and 45"),
        (1, "rfm segment is one of “At Risk” or “Can't Lose Them”"),
        (1, "region is “London”"),
        (1, "days since last order is at least 180"),
        (1, "orders 30d is more than 3"),
        (1, "gender is not “U”"),
        (1, "is outlier is not true"),
        (1, "birth date is unknown"),
        (1, "loyalty id is known"),
        (1, "tenure days is less than 30"),
    ]


def test_behaviour_conditions_and_nested_groups_read_as_sentences():
    rules = {
        "any": [
            {
                "behaviour": {
                    "event": ["product_view"],
                    "at_least": 3,
                    "same_product": True,
                    "in_the_last": "48 hours",
                }
            },
            {
                "all": [
                    {
                        "behaviour": {
                            "event": ["add_to_cart"],
                            "at_least": 1,
                            "in_the_last": "1 day",
                        }
                    },
                    {"behaviour": {"event": ["purchase"], "at_most": 0, "in_the_last": "1 day"}},
                ]
            },
            {
                "not": {
                    "behaviour": {
                        "event": ["email_open", "email_click"],
                        "at_least": 2,
                        "at_most": 5,
                        "within": "10 minutes",
                        "category": ["Women > Shoes"],
                        "url_contains": ["/sale"],
                    }
                }
            },
        ]
    }
    assert describe_rule(rules) == [
        (0, "At least one of these:"),
        (1, "at least 3 product views of one product in the last 48 hours"),
        (1, "All of these:"),
        (2, "at least 1 basket add in the last 1 day"),
        (2, "no purchases in the last 1 day"),
        (1, "Not this:"),
        (
            2,
            "between 2 and 5 email opens or email clicks in category Women > Shoes on pages "
            "whose address contains “/sale” within 10 minutes of each other at any time",
        ),
    ]


def test_every_segment_of_the_project_reads_in_words():
    from ml.segments import load_catalogue, load_segments
    from ml.segments.catalogue import SEGMENTS_DIR
    from ml.segments.rules import rule_to_data

    segments = load_segments(SEGMENTS_DIR, load_catalogue())
    assert segments
    for segment in segments:
        lines = describe_rule(rule_to_data(segment.rules))
        assert lines and all(text and "{" not in text for _, text in lines), segment.name


# --- the size chart ----------------------------------------------------------------------------


def test_axis_tops_are_round_numbers():
    assert [nice_ceiling(v) for v in (0, 1, 3, 12, 44, 246, 1234, 2500, 2501)] == [
        1,
        1,
        5,
        20,
        50,
        250,
        2000,
        2500,
        5000,
    ]


def test_the_size_chart_is_an_svg_that_says_what_it_shows():
    svg = size_chart(
        "Members of lapsed_180d per day",
        [(date(2026, 11, 20), 775), (date(2026, 11, 18), 760), (date(2026, 11, 19), 790)],
    )
    assert svg.startswith('<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 640 240"')
    assert 'role="img"' in svg
    assert (
        '<title id="chart-members-of-lapsed-180d-per-day-title">Members of lapsed_180d per day</title>'
        in svg
    )
    assert (
        '<desc id="chart-members-of-lapsed-180d-per-day-desc">3 days from 2026-11-18 to '
        "2026-11-20: 760 members on the first, 775 on the last (lowest 760 on 2026-11-18, "
        "highest 790 on 2026-11-19).</desc>"
    ) in svg
    assert svg.count("<circle ") == 3
    assert "<polyline " in svg and "style=" not in svg  # no inline CSS: the CSP forbids it
    assert size_chart("Empty", []) == '<p id="chart-empty">No sizes recorded yet.</p>'


# --- users, sign-in and sessions ---------------------------------------------------------------


@pytest.fixture
def store(tmp_path):
    hub = HubStore(tmp_path / "hub.sqlite")
    hub.add_user("mia", "marketer", PASSWORD, actor="tests")
    return hub


def test_passwords_are_stored_as_argon2id_hashes_only(store, tmp_path):
    with sqlite3.connect(tmp_path / "hub.sqlite") as connection:
        (stored,) = connection.execute("select password_hash from users").fetchone()
        dump = "\n".join(connection.iterdump())
    assert stored.startswith("$argon2id$")
    assert PASSWORD not in dump


def test_user_names_passwords_and_roles_are_checked(store):
    with pytest.raises(UserError, match="at least 12 characters"):
        store.add_user("ana", "analyst", "short", actor="tests")
    with pytest.raises(UserError, match="must not be the user name"):
        store.add_user("analyst.number.one", "analyst", "Analyst.Number.One", actor="tests")
    with pytest.raises(UserError, match="is not a user name"):
        store.add_user("ana@example.org", "analyst", PASSWORD, actor="tests")
    with pytest.raises(ValueError, match="unknown role 'admin': choose one of marketer, analyst"):
        store.add_user("ana", "admin", PASSWORD, actor="tests")
    with pytest.raises(UserError, match="already exists"):
        store.add_user("MIA", "analyst", PASSWORD, actor="tests")
    assert [(u.username, u.role) for u in store.users()] == [("mia", "marketer")]


def test_five_failures_lock_a_name_and_unlocking_frees_it(store):
    outcomes = [store.sign_in("mia", "not the password") for _ in range(MAX_FAILURES)]
    assert [o.failures_left for o in outcomes[:-1]] == [4, 3, 2, 1]
    assert all(o.user is None for o in outcomes)
    locked = outcomes[-1].locked_until
    assert locked is not None
    assert (
        timedelta(minutes=14)
        < locked - datetime.now(UTC).replace(tzinfo=None)
        <= timedelta(minutes=15)
    )
    right = store.sign_in("mia", PASSWORD)
    assert (right.user, right.locked_until) == (None, locked)
    assert store.unlock("mia", actor="tests") is True
    assert store.sign_in("mia", PASSWORD).user.username == "mia"
    actions = [row["action"] for row in store.audit_rows()]
    assert actions[:3] == ["sign_in", "unlocked", "locked_out"]
    assert actions.count("sign_in_failed") == MAX_FAILURES - 1


def test_a_success_clears_earlier_failures(store):
    store.sign_in("mia", "not the password")
    store.sign_in("mia", "not the password")
    assert store.sign_in("mia", PASSWORD).user is not None
    assert store.sign_in("mia", "not the password").failures_left == MAX_FAILURES - 1


def test_sessions_expire_and_end_with_a_new_password_or_a_removed_user(store, tmp_path):
    user = store.sign_in("mia", PASSWORD).user
    session = store.open_session(user)
    assert store.session(session.session_id).role == "marketer"
    store.set_role("mia", "analyst", actor="tests")
    assert store.session(session.session_id).role == "analyst"  # a new role counts at once
    with sqlite3.connect(tmp_path / "hub.sqlite") as connection:
        stored = [row[0] for row in connection.execute("select session_hash from sessions")]
        idle = (datetime.now(UTC).replace(tzinfo=None) - timedelta(hours=2)).isoformat(
            sep=" ", timespec="seconds"
        )
        connection.execute("update sessions set last_seen_at = ?", [idle])
    assert session.session_id not in stored  # only its SHA-256 is kept
    assert store.session(session.session_id) is None
    second = store.open_session(user)
    store.set_password("mia", PASSWORD + "!", actor="tests")
    assert store.session(second.session_id) is None
    third = store.open_session(user)
    store.remove_user("mia", actor="tests")
    assert store.session(third.session_id) is None
    assert store.session("not a session") is None


def test_the_users_command_adds_lists_and_refuses(tmp_path):
    environment = {
        "PATH": "/usr/bin:/bin",
        "TEAL_WAREHOUSE": str(tmp_path / "warehouse.duckdb"),
        "TEAL_HUB_DATABASE": str(tmp_path / "hub.sqlite"),
    }

    def hub(*arguments: str, password: str = "") -> subprocess.CompletedProcess:
        command = [sys.executable, "-m", "ml.hub", "users", *arguments]
        return subprocess.run(
            command, input=password, capture_output=True, text=True, env=environment, cwd=REPO_ROOT
        )

    added = hub("add", "ana", "--role", "analyst", "--password-stdin", password=PASSWORD + "\n")
    assert added.returncode == 0, added.stderr
    assert added.stdout == "added ana (analyst); they sign in at http://localhost:8080\n"
    again = hub("add", "ana", "--role", "privacy", "--password-stdin", password=PASSWORD + "\n")
    assert again.returncode == 1
    assert again.stderr.startswith("Nothing changed: user ana already exists")
    wrong = hub("add", "pat", "--role", "admin", "--password-stdin", password=PASSWORD)
    assert wrong.returncode == 2 and "invalid choice: 'admin'" in wrong.stderr
    listed = hub("list")
    assert listed.stdout.split()[:2] == ["ana", "analyst"]


# --- roles -------------------------------------------------------------------------------------


def test_roles_have_exactly_their_permissions():
    granted = {
        role: sorted(p for p in PERMISSIONS if allowed(role, p))
        for role in ("marketer", "analyst", "privacy", "admin")
    }
    assert granted == {
        "marketer": ["download", "exports", "segments"],
        "analyst": ["definitions", "download", "exports", "models", "segments"],
        "privacy": ["privacy"],
        "admin": [],
    }


def test_after_sign_in_only_paths_of_the_hub_are_followed():
    cases = {
        "/exports/lapsed_180d": "/exports/lapsed_180d",
        "https://evil.example/": "/",
        "//evil.example/x": "/",
        "/\\evil.example": "/",
        "": "/",
        None: "/",
    }
    assert {target: local_path(target) for target in cases} == cases


# --- filing an erasure request -----------------------------------------------------------------


def test_a_filed_request_lands_as_one_clean_row_of_the_erasure_feed(tmp_path):
    from ml.landing.loader import Loader

    landing = tmp_path / "landing"
    (landing / "erasure").mkdir(parents=True)
    (landing / "erasure" / "erasure_2026-11-17.csv").write_text(
        "request_id,subject,requested_at\nER9000002,L99000417,2026-11-16T19:02:13Z\n",
        encoding="utf-8",
    )
    filed = file_request(landing, "  Someone.Else@Example.ORG ")
    assert filed.request_id == "ER9000003"
    assert filed.subject_kind == "email"
    assert filed.path.name.startswith("erasure_") and filed.path.name.endswith("_hub_ER9000003.csv")
    header, row = filed.path.read_text(encoding="utf-8").splitlines()
    assert header == "request_id,subject,requested_at"
    assert row.startswith("ER9000003,Someone.Else@Example.ORG,") and row.endswith("Z")
    assert [p.name for p in (landing / "erasure").iterdir() if p.name.startswith(".")] == []
    with duckdb.connect(str(tmp_path / "warehouse.duckdb")) as connection:
        Loader(connection, landing).land_feed("erasure", progress=False)
        landed = connection.execute(
            "select request_id, subject_normalised, subject_type from erasure.requests "
            "order by request_id"
        ).fetchall()
        (quarantined,) = connection.execute("select count(*) from landing.quarantine").fetchone()
    assert ("ER9000003", "someone.else@example.org", "email") in landed
    assert quarantined == 1  # the loyalty id of the other file: erasure takes emails and crm ids


def test_a_subject_that_is_no_email_or_crm_id_files_nothing(tmp_path):
    for subject in ("", "L99000417", "someone at example", "C123"):
        with pytest.raises(ErasureRequestError, match="Type the email address or the crm id"):
            file_request(tmp_path, subject)
    assert not (tmp_path / "erasure").exists() or list((tmp_path / "erasure").iterdir()) == []
    assert file_request(tmp_path, "c1001057").subject_kind == "crm_id"


def test_request_ids_stay_clear_of_every_landed_and_filed_one(tmp_path):
    assert next_request_id(tmp_path) == "ER5000001"
    assert next_request_id(tmp_path, {"ER5000001", "ER5000007", "ER1000015"}) == "ER5000008"


# --- the snapshot ------------------------------------------------------------------------------


def test_a_failed_publication_keeps_the_current_snapshot(tmp_path):
    root = tmp_path / "snapshots"
    settings = Settings.for_root(tmp_path, hub_snapshots=root)
    with pytest.raises(SnapshotError, match="there is no warehouse at .*run the pipeline"):
        publish_snapshot(settings)
    assert current_folder(root) is None
    # the warehouse exists but no run has finished: nothing is published, no folder is left
    duckdb.connect(str(settings.warehouse)).close()
    (root / "20261201T060000000000Z").mkdir()
    (root / CURRENT).symlink_to("20261201T060000000000Z")
    with pytest.raises(SnapshotError, match="has no segments.segment_definitions"):
        publish_snapshot(settings)
    assert current_folder(root) == root / "20261201T060000000000Z"
    assert sorted(p.name for p in root.iterdir()) == ["20261201T060000000000Z", CURRENT]


# --- settings ----------------------------------------------------------------------------------


def test_the_hub_settings_come_from_the_environment_once():
    settings = Settings.from_env(
        {
            "TEAL_WAREHOUSE": "/srv/teal/warehouse.duckdb",
            "TEAL_HUB_PORT": "9090",
            "TEAL_HUB_HOST": "0.0.0.0",
            "TEAL_HUB_SECRET": "s" * 40,
            "TEAL_HUB_HTTPS": "1",
        }
    )
    assert settings.hub_snapshots.as_posix() == "/srv/teal/hub/snapshots"
    assert settings.hub_database.as_posix() == "/srv/teal/hub/hub.sqlite"
    assert (settings.hub_host, settings.hub_port, settings.hub_https) == ("0.0.0.0", 9090, True)
    assert "s" * 40 not in repr(settings)
    moved = settings.replace(warehouse="/data/w.duckdb")
    assert moved.hub_database.as_posix() == "/data/hub/hub.sqlite"
    with pytest.raises(SettingsError, match="TEAL_HUB_PORT must be a port number, not 'http'"):
        Settings.from_env({"TEAL_HUB_PORT": "http"})
    with pytest.raises(SettingsError, match="TEAL_HUB_HTTPS must be 1 or 0"):
        Settings.from_env({"TEAL_HUB_HTTPS": "maybe"})


def test_the_hub_refuses_to_start_without_a_cookie_secret(tmp_path):
    from ml.hub.app import create_app
    from ml.hub.web import HubConfigError

    with pytest.raises(HubConfigError, match="TEAL_HUB_SECRET must be set.*`make serve` creates"):
        create_app(Settings.for_root(tmp_path, hub_secret="short"))
