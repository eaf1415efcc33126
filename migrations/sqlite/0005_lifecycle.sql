-- Managed certificates: Castellan holds them, renews them with fresh keys, and records each rotation.
--
-- The first schema sketched managed certificates, sealed keys and delivery tables that nothing ever wrote; they
-- are replaced here by the shape the lifecycle engine uses. Delivery tables come back with distribution.
DROP TABLE deliveries;
DROP TABLE distribution_targets;
DROP TABLE sealed_keys;
DROP TABLE managed_certificates;

CREATE TABLE managed_certificates (
    id                     INTEGER PRIMARY KEY,
    name                   TEXT NOT NULL UNIQUE,            -- the domain it is addressed by: /admin/domains/{name}
    names_json             TEXT NOT NULL,                   -- ["DNS:a.example", "IP:10.0.0.1"], the name first
    issuer                 TEXT NOT NULL,                   -- 'internal', or an external ACME CA's name
    profile                TEXT NOT NULL,
    key_type               TEXT NOT NULL,                   -- ec-p256, ec-p384, rsa-2048, rsa-3072, rsa-4096
    group_name             TEXT NOT NULL,                   -- whose policy the names must pass
    lifetime_secs          INTEGER,                         -- NULL: the profile's
    status                 TEXT NOT NULL CHECK (status IN ('active', 'removed')),
    current_certificate_id INTEGER REFERENCES certificates(id),
    -- The scheduler's queue: when it next acts, and why. NULL once removed.
    next_renewal_at        INTEGER,
    renewal_reason         TEXT CHECK (renewal_reason IN ('initial', 'scheduled', 'ari', 'manual', 'revoked', 'reissue')),
    -- A replica's claim on the renewal; another may take it once it has expired.
    lease_owner            TEXT,
    lease_expires_at       INTEGER,
    failures               INTEGER NOT NULL DEFAULT 0,      -- consecutive failed attempts; 0 after a success
    last_error             TEXT,
    last_attempt_at        INTEGER,
    created_at             INTEGER NOT NULL,
    updated_at             INTEGER NOT NULL
);
CREATE INDEX managed_due ON managed_certificates (next_renewal_at) WHERE status = 'active';
CREATE INDEX managed_by_certificate ON managed_certificates (current_certificate_id);

-- One row per attempt to give a managed certificate a new certificate.
CREATE TABLE rotations (
    id                 INTEGER PRIMARY KEY,
    managed_id         INTEGER NOT NULL REFERENCES managed_certificates(id),
    reason             TEXT NOT NULL CHECK (reason IN ('initial', 'scheduled', 'ari', 'manual', 'revoked', 'reissue')),
    status             TEXT NOT NULL CHECK (status IN ('queued', 'running', 'succeeded', 'failed', 'abandoned')),
    old_certificate_id INTEGER REFERENCES certificates(id),
    new_certificate_id INTEGER REFERENCES certificates(id),
    replica            TEXT,
    error              TEXT,
    triggered_at       INTEGER NOT NULL,
    started_at         INTEGER,
    completed_at       INTEGER
);
CREATE INDEX rotations_by_managed ON rotations (managed_id, id);
-- At most one rotation in flight per managed certificate: a second "renew now" finds the first.
CREATE UNIQUE INDEX rotations_in_flight ON rotations (managed_id) WHERE status IN ('queued', 'running');

-- Leaf private keys Castellan generated, only sealed under the token's KEK; the seal's additional data names the
-- certificate, so a sealed key copied to another row does not open.
CREATE TABLE sealed_keys (
    certificate_id INTEGER PRIMARY KEY REFERENCES certificates(id),
    managed_id     INTEGER NOT NULL REFERENCES managed_certificates(id),
    kek_label      TEXT NOT NULL,
    key_type       TEXT NOT NULL,
    sealed         BLOB NOT NULL,
    created_at     INTEGER NOT NULL
);


-- Alerts: an expiry alert fires once per threshold per certificate; a renewal alert once per failing episode of a
-- managed certificate. The unique indexes are what make "once" hold across replicas.
CREATE TABLE alerts (
    id             INTEGER PRIMARY KEY,
    kind           TEXT NOT NULL,                   -- expiry_<N>d, or renewal_failing
    certificate_id INTEGER REFERENCES certificates(id),
    managed_id     INTEGER REFERENCES managed_certificates(id),
    fired_at       INTEGER NOT NULL,
    resolved_at    INTEGER
);
CREATE UNIQUE INDEX alerts_once_per_certificate ON alerts (certificate_id, kind) WHERE kind <> 'renewal_failing';
CREATE UNIQUE INDEX alerts_one_failing_episode ON alerts (managed_id) WHERE kind = 'renewal_failing' AND resolved_at IS NULL;
CREATE INDEX alerts_open ON alerts (kind, id) WHERE resolved_at IS NULL;

-- The outbox: each alert state owed to each receiver, claimed by one replica at a time and retried until taken.
CREATE TABLE alert_deliveries (
    id               INTEGER PRIMARY KEY,
    alert_id         INTEGER NOT NULL REFERENCES alerts(id),
    receiver         TEXT NOT NULL,
    state            TEXT NOT NULL CHECK (state IN ('firing', 'resolved')),
    attempts         INTEGER NOT NULL DEFAULT 0,
    next_attempt_at  INTEGER NOT NULL,
    delivered_at     INTEGER,
    last_error       TEXT,
    lease_owner      TEXT,
    lease_expires_at INTEGER,
    UNIQUE (alert_id, receiver, state)
);
CREATE INDEX alert_deliveries_due ON alert_deliveries (next_attempt_at) WHERE delivered_at IS NULL;
