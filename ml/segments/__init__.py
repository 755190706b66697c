"""Rule-based segments: audiences that analysts declare in YAML, validated, compiled to SQL.

Dagster-free. `catalogue` reads the fields segments may use from the attribute model's dbt yml;
`rules` reads and checks segment files (`dbt_project/segments/*.yml`); `compiler` turns a
segment into one parameterised DuckDB query; `membership` runs segments and keeps membership
history and daily sizes in schema `segments`. `python -m ml.segments` is the analysts' CLI.

The asset's whole job:

    catalogue = load_catalogue()                       # the audiences yml
    segments = load_segments(SEGMENTS_DIR, catalogue)  # raises SegmentValidationError
    runs = run_segments(connection, segments, as_of)   # one transaction
"""

from ml.segments.catalogue import (
    DEFAULT_CATALOGUE,
    SEGMENTS_DIR,
    Catalogue,
    CatalogueError,
    Field,
    load_catalogue,
)
from ml.segments.compiler import CompiledSegment, Tables, compile_segment
from ml.segments.membership import (
    DEFINITIONS,
    MEMBERSHIPS,
    SIZES,
    SegmentRun,
    ensure_schema,
    evaluate_segments,
    run_segments,
    segment_members,
    segment_size,
)
from ml.segments.rules import (
    CONSENT_PURPOSES,
    EVENT_TYPES,
    OPERATORS,
    Segment,
    SegmentError,
    SegmentValidationError,
    load_segments,
    parse_segment_file,
)

__all__ = [
    "CONSENT_PURPOSES",
    "DEFAULT_CATALOGUE",
    "DEFINITIONS",
    "EVENT_TYPES",
    "MEMBERSHIPS",
    "OPERATORS",
    "SEGMENTS_DIR",
    "SIZES",
    "Catalogue",
    "CatalogueError",
    "CompiledSegment",
    "Field",
    "Segment",
    "SegmentError",
    "SegmentRun",
    "SegmentValidationError",
    "Tables",
    "compile_segment",
    "ensure_schema",
    "evaluate_segments",
    "load_catalogue",
    "load_segments",
    "parse_segment_file",
    "run_segments",
    "segment_members",
    "segment_size",
]
