-- Account groups bound by EAB, global settings, and the admin API's listings.

-- Settings that apply to every group, such as the global deny list ("policy.global_deny"): the value is text as the
-- admin API stored it (JSON where the setting is structured).
CREATE TABLE settings (
    key        TEXT PRIMARY KEY,
    value      TEXT NOT NULL,
    updated_at BIGINT NOT NULL
);

-- The admin API lists a group's accounts by id pages, and a group cannot be deleted while accounts or credentials
-- name it: both are index ranges instead of table scans.
CREATE INDEX accounts_by_group ON accounts (group_id, id);
CREATE INDEX eab_credentials_by_group ON eab_credentials (group_id, key_id);

-- No index on rate_limits.tat_ms: every rate-limited request rewrites it, and an index would make each of those
-- writes update the index too (and, on PostgreSQL, rule out HOT updates). The purge of idle buckets is a periodic
-- sweep that can afford a scan.
