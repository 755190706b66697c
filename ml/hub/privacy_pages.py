"""The privacy officer's pages: consent, erasure (and filing a request), the audit log.

What the pages show carries customer ids at most: the consent events come from
`marts.fct_consent_events` (the type of identifier a consent was given with, never its value),
the erasure and audit logs hold request ids and export names. The subject of a new erasure
request is written to its landing file and nowhere else; the page never shows it back.
"""

from __future__ import annotations

import json
import re
from typing import Annotated, Any

from fastapi import APIRouter, Form, Request
from fastapi.responses import RedirectResponse, Response

from ml.hub.audience_pages import records, snapshot_or_wait
from ml.hub.erasure import ErasureRequestError, file_request
from ml.hub.web import PrivacyOfficer, Refused, check_csrf, hub_of, page

router = APIRouter()
LATEST_EVENTS = 100
AUDIT_ROWS = 500
CUSTOMER_ID = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
PIPELINE_DETAILS_HIDDEN = ("directory", "files")  # machine paths, and hashes listed elsewhere


@router.get("/privacy")
def privacy(request: Request, session: PrivacyOfficer) -> Response:
    return RedirectResponse("/privacy/erasure", status_code=303)


@router.get("/privacy/consent")
def consent(request: Request, session: PrivacyOfficer, customer_id: str = "") -> Response:
    snapshot = snapshot_or_wait(request)
    looked_up = None
    message = ""
    customer_id = customer_id.strip()
    if customer_id:
        if CUSTOMER_ID.match(customer_id):
            looked_up = records(
                snapshot.query(
                    "select * from {consent_events} where customer_id = ? "
                    "order by recorded_at desc, consent_event_id",
                    [customer_id],
                )
            )
        else:
            message = (
                "A customer id has letters, digits, '_' and '-' only (e.g. cus_0004f3c38d90996e)."
            )
    return page(
        request,
        "privacy_consent.html",
        "Consent",
        summary=records(snapshot.table("consent_summary")),
        ledger=records(snapshot.table("consent_ledger")),
        suppressions=records(snapshot.table("suppressions")),
        latest=records(
            snapshot.query(
                f"select * from {{consent_events}} order by recorded_at desc, "
                f"consent_event_id limit {LATEST_EVENTS}"
            )
        ),
        customer_id=customer_id if CUSTOMER_ID.match(customer_id or "-") else "",
        looked_up=looked_up,
        message=message,
    )


@router.get("/privacy/erasure")
def erasure(request: Request, session: PrivacyOfficer, filed: str = "") -> Response:
    hub = hub_of(request)
    snapshot = snapshot_or_wait(request)
    log = snapshot.table("erasure_log")
    processed = {row["erasure_request_id"]: row for row in records(log)}
    filings = []
    for filing in hub.store.filings():
        done = processed.get(filing["request_id"])
        filings.append({**filing, "processed": done})
    removals = snapshot.table("erasure_removals")
    by_request: dict[str, list[dict[str, Any]]] = {}
    for row in records(removals):
        by_request.setdefault(row["erasure_request_id"], []).append(row)
    filed_now = next((f for f in filings if f["request_id"] == filed), None)
    return page(
        request,
        "privacy_erasure.html",
        "Erasure",
        log=records(log),
        removals=by_request,
        retention=records(snapshot.table("retention_log")),
        filings=filings,
        filed_now=filed_now,
    )


@router.get("/privacy/erasure/new")
def erasure_form(request: Request, session: PrivacyOfficer) -> Response:
    return page(request, "privacy_erasure_new.html", "File an erasure request", message="")


@router.post("/privacy/erasure/new")
def file_erasure(
    request: Request,
    session: PrivacyOfficer,
    subject: Annotated[str, Form()] = "",
    confirmed: Annotated[str, Form()] = "",
    csrf_token: Annotated[str, Form()] = "",
) -> Response:
    check_csrf(request, session, csrf_token)
    hub = hub_of(request)
    if confirmed != "yes":
        return page(
            request,
            "privacy_erasure_new.html",
            "File an erasure request",
            status=400,
            message="Tick the box to confirm you have checked who is asking, then file again.",
        )
    known = {filing["request_id"] for filing in hub.store.filings()}
    try:
        filed = file_request(hub.settings.landing, subject, known)
    except ErasureRequestError:
        # the message names what was typed wrong without repeating it: the page shows no
        # personal data, not even the officer's own typing
        return page(
            request,
            "privacy_erasure_new.html",
            "File an erasure request",
            status=400,
            message="The subject must be the person's email address or their crm id (C "
            "followed by 7 digits). What was typed is neither; nothing was filed.",
        )
    relative = filed.path.relative_to(hub.settings.landing).as_posix()
    hub.store.record_filing(filed.request_id, relative, session.username, session.role)
    return RedirectResponse(f"/privacy/erasure?filed={filed.request_id}", status_code=303)


@router.get("/privacy/audit")
def audit(request: Request, session: PrivacyOfficer, action: str = "") -> Response:
    hub = hub_of(request)
    snapshot = snapshot_or_wait(request)
    rows = [_hub_row(row) for row in hub.store.audit_rows(AUDIT_ROWS)]
    rows += [_pipeline_row(row) for row in records(snapshot.table("audit_log").head(AUDIT_ROWS))]
    actions = sorted({row["action"] for row in rows})
    if action:
        if action not in actions:
            raise Refused(404, "No such action", "The audit log has no rows of this action.")
        rows = [row for row in rows if row["action"] == action]
    rows.sort(key=lambda row: str(row["occurred_at"]), reverse=True)
    return page(
        request,
        "privacy_audit.html",
        "Audit log",
        rows=rows,
        actions=actions,
        action=action,
    )


def _hub_row(row: dict[str, Any]) -> dict[str, Any]:
    details = dict(row["details"])
    return {
        "source": "hub",
        "occurred_at": row["occurred_at"],
        "action": row["action"],
        "who": row["username"],
        "role": row["role"] or "",
        "target": row["target"],
        "files": row["files"],
        "rows": row["row_count"],
        "sha256": details.pop("sha256", ""),
        "details": _details_text(details),
    }


def _pipeline_row(row: dict[str, Any]) -> dict[str, Any]:
    details = json.loads(row["details"] or "{}")
    for key in PIPELINE_DETAILS_HIDDEN:
        details.pop(key, None)
    return {
        "source": "pipeline",
        "occurred_at": str(row["occurred_at"]),
        "action": row["action"],
        "who": f"run {str(row['run_id'] or '')[:8]}",
        "role": "",
        "target": row["target"],
        "files": list(row["files"]),
        "rows": row["row_count"],
        "sha256": "",
        "details": _details_text(details),
    }


def _details_text(details: dict[str, Any]) -> str:
    return "; ".join(
        f"{key}: {json.dumps(value, sort_keys=True) if isinstance(value, dict | list) else value}"
        for key, value in sorted(details.items())
    )
