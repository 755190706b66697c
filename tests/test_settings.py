"""Settings: DuckDB's memory limit, whole and in shares."""

import pytest

from ml.settings import MEMORY_ENV, Settings, SettingsError


@pytest.mark.parametrize(
    ("limit", "share", "expected"),
    [
        ("4GB", 1.0, "4GB"),  # the whole limit is passed on as written
        ("4GB", 0.5, "2000MB"),
        ("4gb", 0.5, "2000MB"),
        ("512MB", 0.5, "256MB"),
        ("1.5GiB", 0.5, "805MB"),  # 1.5 * 1024**3 / 2 bytes
        ("1KB", 0.5, "1MB"),  # never below a megabyte
    ],
)
def test_a_share_of_the_duckdb_memory_limit(limit, share, expected):
    settings = Settings.from_env({MEMORY_ENV: limit})
    assert settings.duckdb_config(memory_share=share) == {
        "memory_limit": expected,
        "threads": settings.duckdb_threads,
    }


def test_a_memory_limit_that_is_not_an_amount_is_refused():
    with pytest.raises(SettingsError, match="must be an amount such as 4GB or 512MB, not '4 gigs'"):
        Settings.from_env({MEMORY_ENV: "4 gigs"})
