"""Who may see what in the hub: three roles and the permissions each one has.

Every route names the permission it needs and the server checks it on every request (the
page, each download, each chart): hiding a link is a courtesy, never the guard.

| permission | marketer | analyst | privacy |
|---|---|---|---|
| `segments`: the segment list and pages (sizes, entered/left, overlap, clusters, RFM) | yes | yes | no |
| `exports`: export runs, manifests, campaign lift | yes | yes | no |
| `download`: the files an export wrote | yes | yes | no |
| `definitions`: a segment's YAML and compiled SQL | no | yes | no |
| `models`: clusters and model reports (charts) | no | yes | no |
| `privacy`: consent, erasure and audit logs; filing an erasure request | no | no | yes |

A privacy officer sees no audience and downloads no file: they answer for personal data, and
the audit log tells them who downloaded what without them holding the files.
"""

from __future__ import annotations

MARKETER = "marketer"
ANALYST = "analyst"
PRIVACY = "privacy"
ROLES = (MARKETER, ANALYST, PRIVACY)

ROLE_DESCRIPTIONS = {
    MARKETER: "segments, their sizes and exports; downloads the files exports wrote",
    ANALYST: "what a marketer sees, plus segment definitions (YAML and SQL), clusters and "
    "model reports",
    PRIVACY: "the consent, erasure and audit logs; files erasure requests",
}

PERMISSIONS: dict[str, frozenset[str]] = {
    "segments": frozenset({MARKETER, ANALYST}),
    "exports": frozenset({MARKETER, ANALYST}),
    "download": frozenset({MARKETER, ANALYST}),
    "definitions": frozenset({ANALYST}),
    "models": frozenset({ANALYST}),
    "privacy": frozenset({PRIVACY}),
}


def allowed(role: str, permission: str) -> bool:
    """Whether `role` has `permission` (an unknown permission is allowed to nobody)."""
    return role in PERMISSIONS.get(permission, frozenset())


def check_role(role: str) -> str:
    """The role if it is one of ROLES; a ValueError that lists them otherwise."""
    if role not in ROLES:
        raise ValueError(f"unknown role {role!r}: choose one of {', '.join(ROLES)}")
    return role
