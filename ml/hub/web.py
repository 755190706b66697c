"""What every route of the hub shares: the signed cookies, the session and permission checks,
CSRF, the security headers, the templates, and the errors that become pages.

Sessions: the cookie `teal_hub_session` carries a random session id signed with the hub's
secret (itsdangerous); the store keeps only its SHA-256 with the user, the CSRF token and the
expiry. Without that cookie no URL of the hub gives anything but the sign-in page: a copied
link to a page or a download is useless to someone who is not signed in.

CSRF: every form carries a token that must match the session's (or, on the sign-in form, a
signed cookie's), and a POST whose Origin header names another site is refused.
"""

from __future__ import annotations

import hmac
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import quote, urlsplit

import pandas as pd
from fastapi import Depends, Request
from itsdangerous import BadSignature, Signer, TimestampSigner
from jinja2 import Environment, FileSystemLoader, select_autoescape
from starlette.datastructures import MutableHeaders

from ml.hub.reader import Snapshot, current_snapshot
from ml.hub.roles import ANALYST, MARKETER, PRIVACY, allowed
from ml.hub.store import HubStore, Session
from ml.settings import HUB_SECRET_ENV, Settings

SESSION_COOKIE = "teal_hub_session"
SIGN_IN_COOKIE = "teal_hub_sign_in"
SIGN_IN_FORM_AGE = 60 * 60  # seconds a sign-in form stays valid
MIN_SECRET = 32
TEMPLATES = Path(__file__).with_name("templates")
STATIC = Path(__file__).with_name("static")

# The pages in the menu, in order, with the permission each needs.
NAVIGATION = (
    ("/", "Overview", None),
    ("/segments", "Segments", "segments"),
    ("/exports", "Exports", "exports"),
    ("/models", "Clusters and models", "models"),
    ("/privacy/consent", "Consent", "privacy"),
    ("/privacy/erasure", "Erasure", "privacy"),
    ("/privacy/audit", "Audit log", "privacy"),
)
ROLE_NAMES = {MARKETER: "marketer", ANALYST: "analyst", PRIVACY: "privacy officer"}


class HubConfigError(RuntimeError):
    """The hub cannot start as configured; the message says which setting to fix."""


class NotSignedIn(Exception):
    """The request has no live session: it goes to the sign-in page."""

    def __init__(self, path: str):
        self.path = path


class Refused(Exception):
    """A request the hub answers with an error page: the status, a title, and a message that
    says what happened and what to do."""

    def __init__(self, status: int, title: str, message: str):
        self.status = status
        self.title = title
        self.message = message


def check_secret(settings: Settings) -> str:
    secret = settings.hub_secret
    if len(secret) < MIN_SECRET:
        raise HubConfigError(
            f"${HUB_SECRET_ENV} must be set to at least {MIN_SECRET} random characters (it "
            "signs the hub's cookies). `make serve` creates .secrets/hub.env with one; outside "
            "make, run `set -a; . .secrets/hub.env; set +a` first, or set it to the output of "
            "`python -c 'import secrets; print(secrets.token_hex(32))'`."
        )
    return secret


@dataclass
class Hub:
    """The hub's state, shared by every request: settings, its database and the signers."""

    settings: Settings
    store: HubStore
    session_signer: Signer
    sign_in_signer: TimestampSigner
    templates: Environment

    @classmethod
    def create(cls, settings: Settings) -> Hub:
        secret = check_secret(settings)
        environment = Environment(
            loader=FileSystemLoader(TEMPLATES),
            autoescape=select_autoescape(["html"]),
            trim_blocks=True,
            lstrip_blocks=True,
        )
        environment.filters.update(
            number=number, signed=signed, percent=percent, moment=moment, day=day
        )
        environment.tests.update(missing=missing)
        return cls(
            settings=settings,
            store=HubStore(settings.hub_database),
            session_signer=Signer(secret, salt="teal-hub-session"),
            sign_in_signer=TimestampSigner(secret, salt="teal-hub-sign-in"),
            templates=environment,
        )

    def snapshot(self) -> Snapshot | None:
        return current_snapshot(self.settings.hub_snapshots)

    def set_cookie(self, response: Any, name: str, value: str) -> None:
        response.set_cookie(
            name,
            value,
            httponly=True,
            samesite="lax",
            secure=self.settings.hub_https,
            path="/",
        )


def hub_of(request: Request) -> Hub:
    return request.app.state.hub


# --- sessions and permissions ------------------------------------------------------------------


def session_of(request: Request) -> Session | None:
    """The live session of the request's cookie, or None."""
    hub = hub_of(request)
    cookie = request.cookies.get(SESSION_COOKIE, "")
    if not cookie:
        return None
    try:
        session_id = hub.session_signer.unsign(cookie).decode("ascii")
    except (BadSignature, UnicodeDecodeError):
        return None
    return hub.store.session(session_id)


def signed_in(request: Request) -> Session:
    """The request's session; a request without one goes to the sign-in page."""
    session = session_of(request)
    if session is None:
        raise NotSignedIn(request.url.path)
    request.state.session = session
    return session


def needs(permission: str) -> Callable[..., Session]:
    """A dependency: the session, if its user's role has `permission`; a 403 page otherwise."""

    def check(request: Request, session: Annotated[Session, Depends(signed_in)]) -> Session:
        if not allowed(session.role, permission):
            raise Refused(
                403,
                "Not for your role",
                f"You are signed in as a {ROLE_NAMES[session.role]}, and this page is not "
                "part of that role. Ask whoever runs Teal if you need it.",
            )
        return session

    return check


# What a route declares to get the session it needs (FastAPI dependencies).
SignedIn = Annotated[Session, Depends(signed_in)]
SegmentsReader = Annotated[Session, Depends(needs("segments"))]
ExportsReader = Annotated[Session, Depends(needs("exports"))]
Downloader = Annotated[Session, Depends(needs("download"))]
ModelsReader = Annotated[Session, Depends(needs("models"))]
PrivacyOfficer = Annotated[Session, Depends(needs("privacy"))]


def check_csrf(request: Request, session: Session, token: str) -> None:
    """Refuse a form whose token is not its session's, or that comes from another site."""
    check_origin(request)
    if not token or not hmac.compare_digest(token, session.csrf_token):
        raise Refused(
            400,
            "This form has expired",
            "The form was not sent from a page of this hub in your current session. Go back, "
            "reload the page and try again.",
        )


def check_origin(request: Request) -> None:
    origin = request.headers.get("origin")
    if origin and origin != "null" and urlsplit(origin).netloc != request.headers.get("host"):
        raise Refused(
            403,
            "Form from another site",
            "This hub only accepts forms sent from its own pages.",
        )


def sign_in_token(hub: Hub, cookie: str) -> tuple[str, str]:
    """The token for the sign-in form and the signed cookie that must come back with it: the
    browser's own while it is valid (so two tabs, or a second page load, do not spoil each
    other's form), a new pair otherwise."""
    token = _sign_in_cookie_token(hub, cookie)
    if token is None:
        token = secrets.token_urlsafe(32)
        cookie = hub.sign_in_signer.sign(token).decode("ascii")
    return token, cookie


def sign_in_token_matches(hub: Hub, cookie: str, token: str) -> bool:
    expected = _sign_in_cookie_token(hub, cookie)
    return bool(token) and expected is not None and hmac.compare_digest(expected, token)


def _sign_in_cookie_token(hub: Hub, cookie: str) -> str | None:
    try:
        return hub.sign_in_signer.unsign(cookie, max_age=SIGN_IN_FORM_AGE).decode("ascii")
    except (BadSignature, UnicodeDecodeError):
        return None


def local_path(target: str | None) -> str:
    """Where to go after signing in: a path of this hub, never another site."""
    if not target or not target.startswith("/") or target.startswith("//") or "\\" in target:
        return "/"
    return target


def sign_in_url(path: str) -> str:
    return "/sign-in" if path in ("/", "") else f"/sign-in?next={quote(path, safe='/')}"


# --- pages -------------------------------------------------------------------------------------


def page(
    request: Request,
    template: str,
    title: str,
    status: int = 200,
    **context: Any,
) -> Any:
    """Render a template inside the layout: the menu of the user's role and the data's age."""
    from fastapi.responses import HTMLResponse

    hub = hub_of(request)
    session: Session | None = getattr(request.state, "session", None)
    snapshot = hub.snapshot() if session else None
    path = request.url.path
    navigation = [
        {
            "href": href,
            "label": label,
            "current": path == href or (href != "/" and path.startswith(href + "/")),
        }
        for href, label, permission in NAVIGATION
        if session and (permission is None or allowed(session.role, permission))
    ]
    html = hub.templates.get_template(template).render(
        request_path=path,
        title=title,
        session=session,
        role_name=ROLE_NAMES.get(session.role, "") if session else "",
        can=(lambda permission: bool(session) and allowed(session.role, permission)),
        navigation=navigation,
        snapshot=snapshot,
        **context,
    )
    return HTMLResponse(html, status_code=status)


def missing(value: Any) -> bool:
    """None, NaN, NaT or pandas' NA: a value a page shows as '–'."""
    if value is None:
        return True
    try:
        return bool(pd.isna(value))
    except (TypeError, ValueError):  # lists and other containers are values
        return False


def number(value: Any) -> str:
    """1234567 -> '1,234,567'; missing -> '–'."""
    if missing(value):
        return "–"
    if isinstance(value, float) and not value.is_integer():
        return f"{value:,.2f}"
    return f"{int(value):,}"


def signed(value: Any) -> str:
    """A change with its sign: 1234 -> '+1,234', -5 -> '−5', 0 -> '0'."""
    if missing(value):
        return "–"
    change = int(value)
    return f"+{change:,}" if change > 0 else (f"−{-change:,}" if change < 0 else "0")


def percent(value: Any, digits: int = 1) -> str:
    """0.9169 -> '91.7%'; missing -> '–'."""
    if missing(value):
        return "–"
    return f"{float(value) * 100:.{digits}f}%"


def day(value: Any) -> str:
    """A date or timestamp as its day ('2026-11-20'); missing -> '–'."""
    if missing(value) or value == "":
        return "–"
    return str(value)[:10]


def moment(value: Any) -> str:
    """A timestamp to the minute in UTC ('2026-12-04 17:42'); missing -> '–'."""
    if missing(value) or value == "":
        return "–"
    if isinstance(value, str):
        value = datetime.fromisoformat(value.rstrip("Z"))
    return f"{value:%Y-%m-%d %H:%M}"


# --- security headers --------------------------------------------------------------------------

SECURITY_HEADERS = {
    "content-security-policy": "default-src 'none'; style-src 'self'; img-src 'self' data:; "
    "form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
    "x-content-type-options": "nosniff",
    "x-frame-options": "DENY",
    "referrer-policy": "no-referrer",
    "cross-origin-opener-policy": "same-origin",
    "cross-origin-resource-policy": "same-origin",
    "permissions-policy": "camera=(), microphone=(), geolocation=(), interest-cohort=()",
    "cache-control": "no-store",
}


class SecurityHeaders:
    """ASGI middleware: the security headers on every response, pages, files and errors alike
    (HSTS too when the hub is served over HTTPS)."""

    def __init__(self, app: Any, https: bool = False):
        self.app = app
        self.headers = dict(SECURITY_HEADERS)
        if https:
            self.headers["strict-transport-security"] = "max-age=31536000"

    async def __call__(self, scope: dict, receive: Callable, send: Callable) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_headers(message: dict) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                for name, value in self.headers.items():
                    headers[name] = value
                if "server" in headers:
                    del headers["server"]
            await send(message)

        await self.app(scope, receive, send_with_headers)
