"""The marketers' and analysts' pages: segments, exports and their downloads, clusters and
model reports.

Every route states its permission (ml/hub/roles.py). Names in URLs (a segment, an export, a
date, a file, a chart) are looked up in the snapshot's own lists and refused when absent, so
no URL can reach a file the snapshot does not list as one of these.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import quote

import pandas as pd
from fastapi import APIRouter, Form, Request
from fastapi.responses import Response, StreamingResponse

from ml.activation.config import FORMAT_FILES, FORMAT_USES
from ml.activation.folders import MANIFEST
from ml.hub.charts import size_chart
from ml.hub.reader import ExportFile, Snapshot
from ml.hub.web import (
    Downloader,
    ExportsReader,
    ModelsReader,
    Refused,
    SegmentsReader,
    check_csrf,
    hub_of,
    page,
)

router = APIRouter()

LEFT_OUT_WORDS = {
    "erasure_requested": "asked to be erased (request not yet processed)",
    "global_unsubscribe": "unsubscribed from all marketing",
    "do_not_sell": "asked us not to sell or share their data",
    "consent_withdrawn": "withdrew consent for this purpose",
    "no_consent": "never gave consent for this purpose",
}
FILE_USES = {name: FORMAT_USES[format_name] for format_name, name in FORMAT_FILES.items()}
MEDIA_TYPES = {".csv": "text/csv; charset=utf-8", ".parquet": "application/vnd.apache.parquet"}
METRIC_WORDS = {
    "conversion_rate": "Conversion rate",
    "revenue_per_customer_gbp": "Revenue per customer (GBP)",
}
CHART_WORDS = {
    "rfm_grid.png": "RFM grid: customers by recency and frequency score",
    "segment_sizes.png": "Segment sizes over time",
    "campaign_lift.png": "Campaign lift per export run, treatment against holdout",
    "cluster_profiles.png": "Cluster profiles: how each cluster differs on every feature",
    "silhouette_elbow.png": "Silhouette and inertia per number of clusters",
}
CHUNK = 1 << 16


def snapshot_or_wait(request: Request) -> Snapshot:
    """The current snapshot; a page that says how to get one when none is published yet."""
    snapshot = hub_of(request).snapshot()
    if snapshot is None:
        raise Refused(
            503,
            "No data yet",
            "The hub shows the data of the pipeline's last successful run, and no run has "
            "published it yet. Run the pipeline (`make run`); its last step publishes the data "
            "here. A warehouse built before the hub existed can publish now with "
            "`python -m ml.hub publish`.",
        )
    return snapshot


def records(frame: pd.DataFrame) -> list[dict[str, Any]]:
    return frame.to_dict("records")


def overview_figures(snapshot: Snapshot) -> dict[str, Any]:
    """The overview's numbers: segments, exports, the newest export day, erasures processed."""
    segments = snapshot.table("segments")
    runs = snapshot.table("export_runs")
    exports = sorted(set(snapshot.exports()) | set(runs["export_name"]))
    days = [day for export in exports if (day := snapshot.latest_day(export))]
    return {
        "segments": len(segments),
        "members": int(segments["members"].sum()) if len(segments) else 0,
        "exports": len(exports),
        "latest_export_day": max(days) if days else None,
        "erasures": len(snapshot.table("erasure_log")),
    }


# --- segments ----------------------------------------------------------------------------------


@router.get("/segments")
def segments(request: Request, session: SegmentsReader) -> Response:
    snapshot = snapshot_or_wait(request)
    return page(request, "segments.html", "Segments", segments=records(snapshot.table("segments")))


@router.get("/segments/{name}")
def segment(request: Request, session: SegmentsReader, name: str) -> Response:
    snapshot = snapshot_or_wait(request)
    table = snapshot.table("segments")
    found = table[table["segment_name"] == name]
    if found.empty:
        raise Refused(
            404,
            "No such segment",
            "The data has no segment by this name. The segment list shows every segment.",
        )
    row = found.iloc[0].to_dict()
    members = int(row["members"])
    sizes = snapshot.table("segment_sizes")
    sizes = sizes[sizes["segment_name"] == name].sort_values("snapshot_date")
    points = [
        (day, int(count))
        for day, count in zip(sizes["snapshot_date"], sizes["members"], strict=True)
    ]

    def shares(frame: pd.DataFrame, column: str) -> list[dict[str, Any]]:
        rows = records(frame[frame["segment_name"] == name])
        for item in rows:
            item["share"] = item[column] / members if members else None
        return rows

    runs = snapshot.table("export_runs")
    exports = sorted(set(runs.loc[runs["segment_name"] == name, "export_name"]))
    changed = bool(row["file_hash"]) and row["file_hash"] != row["definition_hash"]
    return page(
        request,
        "segment.html",
        f"Segment {name}",
        segment=row,
        words=json.loads(row["rules_words"] or "[]"),
        rules_changed=changed,
        parameters=json.loads(row["parameters"] or "{}"),
        chart=size_chart(f"Members of {name} per day", points),
        sizes=records(sizes.sort_values("snapshot_date", ascending=False).head(60)),
        overlap=shares(snapshot.table("segment_overlap"), "shared"),
        clusters=shares(snapshot.table("segment_clusters"), "members"),
        rfm=shares(snapshot.table("segment_rfm"), "members"),
        exports=exports,
    )


# --- exports -----------------------------------------------------------------------------------


def _known_export(snapshot: Snapshot, export: str) -> pd.DataFrame:
    """The export's runs (newest first); a 404 page when the snapshot has no such export."""
    runs = snapshot.table("export_runs")
    mine = runs[runs["export_name"] == export]
    if mine.empty and export not in snapshot.exports():
        raise Refused(
            404,
            "No such export",
            "The data has no export by this name. The export list shows every export.",
        )
    return mine


@router.get("/exports")
def exports(request: Request, session: ExportsReader) -> Response:
    snapshot = snapshot_or_wait(request)
    runs = snapshot.table("export_runs")
    names = sorted(set(snapshot.exports()) | set(runs["export_name"]))
    listing = []
    for export in names:
        mine = runs[runs["export_name"] == export]
        latest = mine.iloc[0].to_dict() if len(mine) else {}
        listing.append(
            {
                "export": export,
                "segment": latest.get("segment_name"),
                "purpose": latest.get("consent_purpose"),
                "status": latest.get("status"),
                "rows": latest.get("rows_exported"),
                "holdout": latest.get("rows_holdout"),
                "day": snapshot.latest_day(export),
                "folders": len(snapshot.days(export)),
            }
        )
    return page(request, "exports.html", "Exports", exports=listing)


@router.get("/exports/{export}")
def export(request: Request, session: ExportsReader, export: str) -> Response:
    snapshot = snapshot_or_wait(request)
    runs = _known_export(snapshot, export)
    latest = snapshot.latest_day(export)
    folders = [
        _folder(snapshot, export, day, latest)
        for day in ([latest] if latest else []) + [d for d in snapshot.days(export) if d != latest]
    ]
    lift = snapshot.table("campaign_lift")
    lift = lift[lift["export_name"] == export]
    return page(
        request,
        "export.html",
        f"Export {export}",
        export=export,
        folders=folders,
        runs=records(runs),
        lift=[
            {**row, "metric_words": METRIC_WORDS.get(row["metric"], row["metric"])}
            for row in records(lift)
        ],
        segment=runs.iloc[0]["segment_name"] if len(runs) else None,
    )


def _folder(snapshot: Snapshot, export: str, day: str, latest: str | None) -> dict[str, Any]:
    """One export folder as the page shows it: its manifest in readable parts and its files."""
    manifest = snapshot.manifest(export, day) or {}
    left_out = manifest.get("left_out") or {}
    readiness = manifest.get("match_readiness") or {}
    return {
        "day": day,
        "latest": day == latest,
        "manifest": manifest,
        "left_out": [
            {"reason": reason, "words": LEFT_OUT_WORDS.get(reason, reason), "rows": rows}
            for reason, rows in left_out.items()
        ],
        "left_out_total": sum(int(v) for v in left_out.values()),
        "readiness": readiness,
        "files": [
            {"file": file, "use": FILE_USES.get(file.name, ""), "url": _file_url(file)}
            for file in snapshot.files(export, day)
        ],
        "amendments": manifest.get("amendments") or [],
    }


def _file_url(file: ExportFile) -> str:
    return "/exports/" + "/".join(
        quote(part, safe="") for part in (file.export, file.day, file.name)
    )


@router.get("/exports/{export}/{day}/{name}")
def file_address(
    request: Request, session: ExportsReader, export: str, day: str, name: str
) -> Response:
    """A file's address typed or shared as a link gives no file: downloads are the page's
    buttons (a form with the session's CSRF token), each one audited."""
    raise Refused(
        405,
        "Download from the export's page",
        "Files are not handed out at their address. Open the export's page and use its "
        "Download button: every download is recorded in the audit log.",
    )


@router.post("/exports/{export}/{day}/{name}")
def download(
    request: Request,
    session: Downloader,
    export: str,
    day: str,
    name: str,
    csrf_token: Annotated[str, Form()] = "",
) -> Response:
    """Hand out one export file, after writing who, when, which file and its SHA-256 to the
    hub's audit log."""
    check_csrf(request, session, csrf_token)
    hub = hub_of(request)
    snapshot, file, handle = _open_export_file(request, export, day, name)
    try:
        manifest = snapshot.manifest(export, day) or {}
        hub.store.record(
            "download",
            session.username,
            session.role,
            export,
            run_id=manifest.get("run_id"),
            files=[file.relative],
            rows=file.rows,
            details={"sha256": file.sha256, "bytes": file.bytes, "snapshot": snapshot.name},
        )
    except BaseException:
        handle.close()
        raise
    return StreamingResponse(
        _chunks(handle),
        media_type=MEDIA_TYPES.get(Path(name).suffix, "application/octet-stream"),
        headers={
            "content-disposition": f'attachment; filename="{export}_{day}_{name}"',
            "content-length": str(file.bytes),
            "repr-digest": "sha-256=:"
            + base64.b64encode(bytes.fromhex(file.sha256)).decode("ascii")
            + ":",
        },
    )


def _open_export_file(
    request: Request, export: str, day: str, name: str
) -> tuple[Snapshot, ExportFile, Any]:
    """The current snapshot, the file it lists as `export/day/name`, and the file opened.

    Opened before the audit row is written and held by the response, so a publication that
    swaps snapshots meanwhile cannot take the file away mid-download. A publication that
    swapped them between the look-up and the opening (the previous snapshot keeps no export
    files) sends the look-up to the new snapshot."""
    snapshot, file = _listed_file(request, export, day, name)
    try:
        return snapshot, file, open(file.path, "rb")  # noqa: SIM115 (closed by _chunks)
    except FileNotFoundError:
        snapshot, file = _listed_file(request, export, day, name)
        return snapshot, file, open(file.path, "rb")  # noqa: SIM115 (closed by _chunks)


def _listed_file(request: Request, export: str, day: str, name: str) -> tuple[Snapshot, ExportFile]:
    snapshot = snapshot_or_wait(request)
    file = snapshot.export_file(export, day, name)
    if file is None:
        raise Refused(
            404,
            "No such file",
            "The data lists no file by this name for this export and day. The export's page "
            "lists the files you can download.",
        )
    _refuse_if_erased_since(hub_of(request).settings.exports, snapshot, file)
    return snapshot, file


def _chunks(handle: Any) -> Iterator[bytes]:
    with handle:
        while block := handle.read(CHUNK):
            yield block


def _refuse_if_erased_since(exports_root: Path, snapshot: Snapshot, file: ExportFile) -> None:
    """Erasure wins over the snapshot: when a run has since removed erased people from this
    folder's files (its manifest has more amendments than the snapshot's), the old copy is not
    handed out; the next publication brings the amended one."""
    live = exports_root / file.export / file.day / MANIFEST
    try:
        amendments = json.loads(live.read_text(encoding="utf-8")).get("amendments") or []
    except (OSError, ValueError):
        return
    published = (snapshot.manifest(file.export, file.day) or {}).get("amendments") or []
    if len(amendments) > len(published):
        raise Refused(
            409,
            "This file changed after an erasure",
            "Since the hub's data was refreshed, an erasure removed people from this file. "
            "The amended file can be downloaded once the current run has finished and "
            "refreshed the hub (usually within minutes).",
        )


# --- clusters and model reports ----------------------------------------------------------------


@router.get("/models")
def models(request: Request, session: ModelsReader) -> Response:
    snapshot = snapshot_or_wait(request)
    runs = snapshot.table("cluster_runs")
    run = runs.iloc[0].to_dict() if len(runs) else None
    silhouette = json.loads(run["silhouette_by_k"] or "{}") if run else {}
    profiles = snapshot.table("cluster_profiles")
    if run is not None and "model_version" in profiles:
        profiles = profiles[profiles["model_version"] == run["model_version"]]
    return page(
        request,
        "models.html",
        "Clusters and models",
        run=run,
        silhouette=sorted(((int(k), v) for k, v in silhouette.items()), key=lambda kv: kv[0]),
        profiles=records(profiles),
        charts=[(name, CHART_WORDS.get(name, name)) for name in snapshot.charts()],
    )


@router.get("/charts/{name}")
def chart(request: Request, session: ModelsReader, name: str) -> Response:
    snapshot = snapshot_or_wait(request)
    path = snapshot.chart(name)
    if path is None:
        raise Refused(404, "No such chart", "The data has no chart by this name.")
    return Response(path.read_bytes(), media_type="image/png")
