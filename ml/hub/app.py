"""The audience hub's web application: `create_app(settings)` builds it.

Server-rendered HTML from Jinja templates, one stylesheet, no JavaScript. Signing in and out,
the overview page and the error pages live here; the audience pages (segments, exports,
downloads, clusters) in `audience_pages`, the privacy officer's in `privacy_pages`.

It reads only the snapshot the pipeline publishes (ml/hub/snapshot.py) and its own SQLite
database (ml/hub/store.py); it never opens the warehouse.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable
from typing import Annotated, Any

from fastapi import FastAPI, Form, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, HTMLResponse, RedirectResponse, Response
from starlette.exceptions import HTTPException as StarletteHTTPException

from ml.hub import audience_pages, privacy_pages
from ml.hub.roles import ROLE_DESCRIPTIONS
from ml.hub.store import MAX_FAILURES
from ml.hub.web import (
    SESSION_COOKIE,
    SIGN_IN_COOKIE,
    STATIC,
    Hub,
    NotSignedIn,
    Refused,
    SecurityHeaders,
    SignedIn,
    check_csrf,
    check_origin,
    hub_of,
    local_path,
    page,
    session_of,
    sign_in_token,
    sign_in_token_matches,
    sign_in_url,
)
from ml.settings import Settings

log = logging.getLogger("ml.hub")
STATIC_FILES = {"hub.css": "text/css", "favicon.svg": "image/svg+xml"}  # all of /static/


def create_app(settings: Settings) -> FastAPI:
    """The hub for these settings (HubConfigError when the cookie secret is missing)."""
    hub = Hub.create(settings)
    app = FastAPI(
        title="Teal audience hub",
        docs_url=None,
        redoc_url=None,
        openapi_url=None,
    )
    app.state.hub = hub
    app.add_exception_handler(NotSignedIn, _to_sign_in)
    app.add_exception_handler(Refused, _refused)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    app.add_exception_handler(RequestValidationError, _bad_request)
    app.include_router(_router())
    app.include_router(audience_pages.router)
    app.include_router(privacy_pages.router)
    app.add_middleware(ServerErrors)
    app.add_middleware(SecurityHeaders, https=settings.hub_https)
    return app


def _router():
    from fastapi import APIRouter

    router = APIRouter()

    @router.get("/sign-in")
    def sign_in_form(request: Request, next: str = "/", signed_out: bool = False) -> Response:
        if session_of(request) is not None:
            return RedirectResponse(local_path(next), status_code=303)
        return _sign_in_page(request, next, "You are signed out." if signed_out else "")

    @router.post("/sign-in")
    def sign_in(
        request: Request,
        username: Annotated[str, Form()] = "",
        password: Annotated[str, Form()] = "",
        csrf_token: Annotated[str, Form()] = "",
        next: Annotated[str, Form()] = "/",
    ) -> Response:
        hub = hub_of(request)
        check_origin(request)
        cookie = request.cookies.get(SIGN_IN_COOKIE, "")
        if not sign_in_token_matches(hub, cookie, csrf_token):
            return _sign_in_page(
                request,
                next,
                "The sign-in form had expired. It is fresh now: sign in again.",
                status=400,
            )
        outcome = hub.store.sign_in(username, password)
        if outcome.locked_until is not None:
            message = (
                f"Too many failed sign-ins ({MAX_FAILURES} in a row): this user name is locked "
                f"until {outcome.locked_until:%H:%M} UTC. Wait until then, or ask whoever runs "
                "Teal to run `python -m ml.hub users unlock NAME`."
            )
            return _sign_in_page(request, next, message, status=403)
        if outcome.user is None:
            left = outcome.failures_left
            message = (
                "Wrong user name or password. "
                f"{left} more failed {'try' if left == 1 else 'tries'} and this user name is "
                "locked for 15 minutes."
            )
            return _sign_in_page(request, next, message, status=401)
        session = hub.store.open_session(outcome.user)
        response = RedirectResponse(local_path(next), status_code=303)
        hub.set_cookie(
            response, SESSION_COOKIE, hub.session_signer.sign(session.session_id).decode()
        )
        response.delete_cookie(SIGN_IN_COOKIE, path="/")
        return response

    @router.post("/sign-out")
    def sign_out(
        request: Request, session: SignedIn, csrf_token: Annotated[str, Form()] = ""
    ) -> Response:
        check_csrf(request, session, csrf_token)
        hub_of(request).store.close_session(session)
        response = RedirectResponse("/sign-in?signed_out=true", status_code=303)
        response.delete_cookie(SESSION_COOKIE, path="/")
        return response

    @router.get("/")
    def overview(request: Request, session: SignedIn) -> Response:
        snapshot = hub_of(request).snapshot()
        figures = audience_pages.overview_figures(snapshot) if snapshot else {}
        return page(
            request,
            "overview.html",
            "Overview",
            figures=figures,
            role_description=ROLE_DESCRIPTIONS[session.role],
        )

    @router.get("/static/{name}")
    def static(name: str) -> Response:
        if name not in STATIC_FILES:
            raise StarletteHTTPException(404)
        return FileResponse(STATIC / name, media_type=STATIC_FILES[name])

    return router


def _sign_in_page(request: Request, next: str, message: str, status: int = 200) -> Response:
    hub = hub_of(request)
    token, cookie = sign_in_token(hub, request.cookies.get(SIGN_IN_COOKIE, ""))
    response = page(
        request,
        "sign_in.html",
        "Sign in",
        status=status,
        csrf_token=token,
        next=local_path(next),
        message=message,
    )
    hub.set_cookie(response, SIGN_IN_COOKIE, cookie)
    return response


# --- errors become pages -----------------------------------------------------------------------


def _to_sign_in(request: Request, error: NotSignedIn) -> Response:
    target = error.path if request.method == "GET" else "/"
    return RedirectResponse(sign_in_url(target), status_code=303)


def _refused(request: Request, error: Refused) -> Response:
    return page(
        request,
        "error.html",
        error.title,
        status=error.status,
        message=error.message,
    )


HTTP_MESSAGES = {
    404: ("Not found", "There is no page at this address. Use the menu to find your way."),
    405: (
        "Not like this",
        "This address does not answer that kind of request. Files are downloaded with the "
        "Download buttons on an export's page, after signing in.",
    ),
}


def _http_error(request: Request, error: StarletteHTTPException) -> Response:
    if session_of(request) is None:  # no session: nothing about the hub but the sign-in page
        return RedirectResponse(sign_in_url("/"), status_code=303)
    request.state.session = session_of(request)
    title, message = HTTP_MESSAGES.get(
        error.status_code, ("Request refused", "The hub could not answer this request.")
    )
    return page(request, "error.html", title, status=error.status_code, message=message)


def _bad_request(request: Request, error: RequestValidationError) -> Response:
    return page(
        request,
        "error.html",
        "Request not understood",
        status=400,
        message="The request was missing something the page needs. Go back and try again.",
    )


class ServerErrors:
    """ASGI middleware: an error nobody foresaw becomes a plain page with a reference, and the
    traceback goes to the hub's log only, never to the browser."""

    def __init__(self, app: Any):
        self.app = app

    async def __call__(self, scope: dict, receive: Callable, send: Callable) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = False

        async def watch(message: dict) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, receive, watch)
        except Exception:
            reference = uuid.uuid4().hex[:12]
            log.exception("hub error %s on %s %s", reference, scope["method"], scope["path"])
            if started:  # the page was half sent: all that can be done is to stop
                return
            hub: Hub = scope["app"].state.hub
            html = hub.templates.get_template("error.html").render(
                title="Something went wrong",
                session=None,
                navigation=[],
                snapshot=None,
                can=lambda permission: False,
                message=(
                    f"The hub could not show this page (reference {reference}). Try again in a "
                    "moment; if it keeps happening, give the reference to whoever runs Teal: "
                    "the details are in the hub's log."
                ),
            )
            await HTMLResponse(html, status_code=500)(scope, receive, send)
