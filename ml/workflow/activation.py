"""Steps: decide who each export may contain (proven against live consent), write the files,
and measure campaign lift."""

from __future__ import annotations

from contextlib import nullcontext
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from ml.activation.candidates import build_candidates, live_state, verify_candidates
from ml.activation.config import ExportConfig, ExportValidationError, load_exports
from ml.activation.files import ExportResult, record_blocked, verify_export_folder, write_export
from ml.as_of import cutoff
from ml.secrets import check_salt
from ml.segments import Segment, SegmentValidationError, load_catalogue, load_segments
from ml.segments.catalogue import SEGMENTS_DIR
from ml.settings import Settings
from ml.workflow.errors import StepError


def configured_exports() -> list[tuple[ExportConfig, Segment]]:
    """Every export configuration with its segment, validated; a StepError lists the problems."""
    try:
        catalogue = load_catalogue()
        segments = {s.name: s for s in load_segments(SEGMENTS_DIR, catalogue)}
        exports = load_exports(segments=segments, catalogue=catalogue)
    except (SegmentValidationError, ExportValidationError) as error:
        raise StepError("export files are not valid:\n" + "\n".join(error.messages())) from error
    return [(export, segments[export.segment]) for export in exports]


@dataclass
class CandidatesStep:
    """Per export: its counts; and every row that was about to be exported without consent."""

    counts: list[dict] = field(default_factory=list)
    without_consent: pd.DataFrame = field(default_factory=pd.DataFrame)


def decide_candidates(settings: Settings, *, run_id: str, as_of: str) -> CandidatesStep:
    """Give every member of every exported segment one outcome (export, holdout, or left out
    with its reason), then prove each `export` row against the live consent and suppression
    views. An export with any row that fails is recorded as blocked (audited, no file)."""
    step = CandidatesStep()
    offending = []
    with settings.connect() as connection:
        salt = check_salt(connection, settings.salt)
        exports = configured_exports()
        built = [
            build_candidates(connection, export, segment, run_id, as_of, salt)
            for export, segment in exports
        ]
        # every export is checked against one reading of the live consent and suppression
        with live_state(connection) if exports else nullcontext() as live:
            for (export, segment), counts in zip(exports, built, strict=True):
                bad = verify_candidates(
                    connection,
                    run_id,
                    export.name,
                    segment.consent_purpose,
                    holdout_percent=export.holdout_percent,
                    salt=salt,
                    live=live,
                )
                if not bad.empty:
                    offending.append(bad.assign(export_name=export.name))
                    record_blocked(
                        connection, export, segment, run_id, as_of, bad, settings.exports
                    )
                step.counts.append(
                    {
                        "export": export.name,
                        "segment": segment.name,
                        "members": counts["members"],
                        "export rows": counts["export"],
                        "holdout": counts["holdout"],
                        "left out": counts["left_out_total"],
                    }
                )
    if offending:
        step.without_consent = pd.concat(offending, ignore_index=True)
    return step


@dataclass
class ExportsStep:
    """The exports written, and any way a written folder differs from its manifest."""

    results: list[ExportResult]
    problems: list[str]


def write_exports(settings: Settings, *, run_id: str, as_of: str) -> ExportsStep:
    """Write each export's files, manifest and `latest` pointer under `settings.exports`,
    record its members and an audit row, and check every folder against its manifest."""
    results, problems = [], []
    with settings.connect() as connection:
        for export, segment in configured_exports():
            result = write_export(connection, export, segment, run_id, as_of, settings.exports)
            results.append(result)
            problems += verify_export_folder(connection, result.directory, run_id)
    return ExportsStep(results, problems)


@dataclass
class LiftStep:
    """Treatment versus holdout per export run, and where the report and chart were written."""

    frame: pd.DataFrame
    report: Path
    chart: Path | None


def measure_lift(settings: Settings, *, as_of: str) -> LiftStep:
    """Conversion and revenue lift of treatment over holdout for every export run, with
    confidence intervals and p-values; a markdown report and a chart under `settings.reports`."""
    from ml.activation.measurement import measure_campaigns, write_chart, write_report

    with settings.connect() as connection:
        frame = measure_campaigns(connection, cutoff(as_of))
    report = write_report(frame, settings.reports / "campaign_lift.md")
    chart = None
    if not frame.empty:
        chart = write_chart(frame, settings.reports / "charts" / "campaign_lift.png")
    return LiftStep(frame, report, chart)
