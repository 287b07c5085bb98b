"""Everything that depends on the PostgreSQL major version, in one place.

Rules ask these questions; they never compare version numbers themselves.
The version is production's when the user declares it (``postgres_version``
setting, ``--postgres-version`` or ``--stats-url``), else the scratch server's.
"""

from __future__ import annotations

import dataclasses


@dataclasses.dataclass(frozen=True)
class PgFacts:
    major: int
    #: Where the version came from: "setting", "stats-url" or "scratch server".
    origin: str = "scratch server"

    @property
    def add_column_constant_default_is_instant(self) -> bool:
        """PG11+: ADD COLUMN ... DEFAULT <constant or stable expr> needs no rewrite."""
        return self.major >= 11

    @property
    def set_not_null_skips_scan_with_valid_check(self) -> bool:
        """PG12+: SET NOT NULL skips the scan when a validated CHECK (col IS NOT NULL) exists."""
        return self.major >= 12

    @property
    def timestamp_tz_change_skips_rewrite_in_utc(self) -> bool:
        """PG12+: ALTER TYPE timestamp <-> timestamptz needs no rewrite when TimeZone is UTC."""
        return self.major >= 12

    @property
    def has_not_null_not_valid(self) -> bool:
        """PG18+: ADD CONSTRAINT name NOT NULL col NOT VALID, then VALIDATE CONSTRAINT."""
        return self.major >= 18

    @property
    def has_reindex_concurrently(self) -> bool:
        return self.major >= 12

    @property
    def has_builtin_gen_random_uuid(self) -> bool:
        return self.major >= 13

    @property
    def has_drop_database_force(self) -> bool:
        return self.major >= 13

    @property
    def stats_flush_on_idle(self) -> bool:
        """PG15+: cumulative statistics live in shared memory (pg_stat_force_next_flush)."""
        return self.major >= 15
