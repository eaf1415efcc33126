-- Castellan schema, SQLite. Times are Unix seconds (INTEGER); hashes and DER are BLOBs; lists and free-form
-- details are JSON text. Every table the mission needs is here from the start, so later issues add code, not
-- tables: the CA's issuers, ACME state, the certificate inventory, managed certificates and their distribution,
-- rate limits, admin tokens and the audit log.

CREATE TABLE issuers (
    id              INTEGER PRIMARY KEY,
    name            TEXT NOT NULL UNIQUE,
    role            TEXT NOT NULL CHECK (role IN ('root', 'intermediate', 'ocsp-responder')),
    subject         TEXT NOT NULL,
    certificate_der BLOB NOT NULL,
    spki_sha256     BLOB NOT NULL,
    key_id          BLOB NOT NULL,            -- SubjectKeyIdentifier: what leaves' AKI and RFC 9773 certIDs name
    token_label     TEXT,                     -- where the private key lives; NULL for an external root
    key_label       TEXT,
    not_before      INTEGER NOT NULL,
    not_after       INTEGER NOT NULL,
    status          TEXT NOT NULL DEFAULT 'active' CHECK (status IN ('active', 'retired')),
    created_at      INTEGER NOT NULL
);

CREATE TABLE account_groups (
    id          INTEGER PRIMARY KEY,
    name        TEXT NOT NULL UNIQUE,
    policy_json TEXT NOT NULL DEFAULT '{}',
    created_at  INTEGER NOT NULL,
    updated_at  INTEGER NOT NULL
);

CREATE TABLE eab_credentials (
    key_id           TEXT PRIMARY KEY,
    group_id         INTEGER NOT NULL REFERENCES account_groups(id),
    hmac_key_sealed  BLOB NOT NULL,           -- sealed under the token's KEK, never stored in the clear
    created_at       INTEGER NOT NULL,
    used_at          INTEGER,
    used_by_account  INTEGER
);

CREATE TABLE accounts (
    id              INTEGER PRIMARY KEY,
    jwk_json        TEXT NOT NULL,
    jwk_thumbprint  TEXT NOT NULL UNIQUE,     -- RFC 7638; one account per key
    status          TEXT NOT NULL CHECK (status IN ('valid', 'deactivated', 'revoked')),
    contacts_json   TEXT NOT NULL DEFAULT '[]',
    group_id        INTEGER REFERENCES account_groups(id),
    eab_key_id      TEXT UNIQUE REFERENCES eab_credentials(key_id),
    terms_agreed    INTEGER NOT NULL DEFAULT 0,
    created_at      INTEGER NOT NULL,
    updated_at      INTEGER NOT NULL
);

-- The certificate inventory: every certificate Castellan issued, manages, obtained publicly or discovered.
-- A row is written with status 'pending' (serial and TBS hash) before the HSM signs, and completed after, so a
-- crash in between never leaves a signed certificate the inventory lacks, and a serial is never used twice.
CREATE TABLE certificates (
    id               INTEGER PRIMARY KEY,
    issuer_id        INTEGER REFERENCES issuers(id),  -- our issuer; NULL for public or discovered certificates
    issuer_key_id    BLOB NOT NULL,                   -- the issuer's key identifier (AKI)
    issuer_dn        TEXT NOT NULL,
    serial           TEXT NOT NULL,                   -- lower-case hex of the serial's content octets
    status           TEXT NOT NULL CHECK (status IN ('pending', 'active', 'expiring_soon', 'renewing', 'superseded', 'expired', 'revoked', 'failed')),
    source           TEXT NOT NULL CHECK (source IN ('internal_acme', 'managed_internal', 'managed_public', 'discovered')),
    profile          TEXT,
    subject          TEXT NOT NULL,
    sans_json        TEXT NOT NULL,                   -- ["DNS:a.example", "IP:10.0.0.1", "URI:spiffe://..."]
    tbs_sha256       BLOB NOT NULL,
    cert_sha256      BLOB UNIQUE,                     -- NULL while pending
    spki_sha256      BLOB NOT NULL,
    certificate_der  BLOB,                            -- NULL while pending
    not_before       INTEGER NOT NULL,
    not_after        INTEGER NOT NULL,
    account_id       INTEGER REFERENCES accounts(id),
    owner            TEXT,
    replaces_id      INTEGER REFERENCES certificates(id),
    replaced_by_id   INTEGER REFERENCES certificates(id),
    renewal_due_at   INTEGER,                         -- ARI: an admin or a revocation can pull this into the past
    created_at       INTEGER NOT NULL,
    updated_at       INTEGER NOT NULL,
    UNIQUE (issuer_key_id, serial)
);
-- "Expiring within N days" over live certificates only, ordered for stable cursors.
CREATE INDEX certificates_live_by_expiry ON certificates (not_after, id)
    WHERE status IN ('active', 'expiring_soon', 'renewing');
CREATE INDEX certificates_by_spki ON certificates (spki_sha256);
CREATE INDEX certificates_by_account ON certificates (account_id, id);
CREATE INDEX certificates_by_status ON certificates (status, id);
CREATE INDEX certificates_by_serial ON certificates (serial);

CREATE TABLE orders (
    id               INTEGER PRIMARY KEY,
    account_id       INTEGER NOT NULL REFERENCES accounts(id),
    status           TEXT NOT NULL CHECK (status IN ('pending', 'ready', 'processing', 'valid', 'invalid')),
    identifiers_json TEXT NOT NULL,
    profile          TEXT,
    not_before       INTEGER,
    not_after        INTEGER,
    replaces         TEXT,                    -- RFC 9773 certID of the certificate this order replaces
    csr_der          BLOB,
    certificate_id   INTEGER REFERENCES certificates(id),
    error_json       TEXT,
    expires_at       INTEGER NOT NULL,
    created_at       INTEGER NOT NULL,
    updated_at       INTEGER NOT NULL
);
CREATE INDEX orders_by_account ON orders (account_id, id);
CREATE UNIQUE INDEX orders_replaces_once ON orders (replaces) WHERE replaces IS NOT NULL AND status <> 'invalid';

CREATE TABLE authorizations (
    id               INTEGER PRIMARY KEY,
    account_id       INTEGER NOT NULL REFERENCES accounts(id),
    identifier_type  TEXT NOT NULL CHECK (identifier_type IN ('dns', 'ip')),
    identifier_value TEXT NOT NULL,
    wildcard         INTEGER NOT NULL DEFAULT 0,
    status           TEXT NOT NULL CHECK (status IN ('pending', 'valid', 'invalid', 'deactivated', 'expired', 'revoked')),
    expires_at       INTEGER NOT NULL,
    created_at       INTEGER NOT NULL,
    updated_at       INTEGER NOT NULL
);
-- Authorization reuse: a valid, unexpired authz of this account for this identifier.
CREATE INDEX authorizations_for_reuse ON authorizations (account_id, identifier_type, identifier_value, status, expires_at);

CREATE TABLE order_authorizations (
    order_id         INTEGER NOT NULL REFERENCES orders(id),
    authorization_id INTEGER NOT NULL REFERENCES authorizations(id),
    PRIMARY KEY (order_id, authorization_id)
);

CREATE TABLE challenges (
    id               INTEGER PRIMARY KEY,
    authorization_id INTEGER NOT NULL REFERENCES authorizations(id),
    type             TEXT NOT NULL CHECK (type IN ('http-01', 'dns-01', 'tls-alpn-01')),
    token            TEXT NOT NULL,
    status           TEXT NOT NULL CHECK (status IN ('pending', 'processing', 'valid', 'invalid')),
    validated_at     INTEGER,
    error_json       TEXT,
    UNIQUE (authorization_id, type)
);

-- Anti-replay nonces, shared by every replica on one database: consumed by DELETE, so each is used once.
CREATE TABLE nonces (
    nonce      TEXT PRIMARY KEY,
    expires_at INTEGER NOT NULL
);
CREATE INDEX nonces_by_expiry ON nonces (expires_at);

-- One row per name in a certificate; name_reversed ("moc.elpmaxe.www") makes suffix search an index range.
CREATE TABLE certificate_names (
    certificate_id INTEGER NOT NULL REFERENCES certificates(id),
    name           TEXT NOT NULL,
    name_reversed  TEXT NOT NULL,
    PRIMARY KEY (certificate_id, name)
);
CREATE INDEX certificate_names_by_name ON certificate_names (name, certificate_id);
CREATE INDEX certificate_names_by_suffix ON certificate_names (name_reversed, certificate_id);

CREATE TABLE revocations (
    certificate_id INTEGER PRIMARY KEY REFERENCES certificates(id),
    reason         INTEGER NOT NULL,                 -- RFC 5280 CRLReason code
    revoked_at     INTEGER NOT NULL,
    revoked_by     TEXT NOT NULL
);

-- CRL numbers, monotonic across restarts and replicas (RFC 5280 §5.2.3).
CREATE TABLE crl_numbers (
    issuer_id   INTEGER NOT NULL REFERENCES issuers(id),
    shard       INTEGER NOT NULL DEFAULT 0,
    last_number INTEGER NOT NULL,
    PRIMARY KEY (issuer_id, shard)
);

-- Certificates Castellan keeps renewed and delivered.
CREATE TABLE managed_certificates (
    id                     INTEGER PRIMARY KEY,
    name                   TEXT NOT NULL UNIQUE,
    names_json             TEXT NOT NULL,
    source                 TEXT NOT NULL CHECK (source IN ('managed_internal', 'managed_public')),
    profile                TEXT,
    key_type               TEXT NOT NULL,
    renew_before_secs      INTEGER NOT NULL,
    current_certificate_id INTEGER REFERENCES certificates(id),
    owner                  TEXT,
    status                 TEXT NOT NULL DEFAULT 'active' CHECK (status IN ('active', 'paused', 'deleted')),
    created_at             INTEGER NOT NULL,
    updated_at             INTEGER NOT NULL
);

-- Leaf private keys Castellan generated: only sealed under the token's KEK (AAD binds purpose and owner).
CREATE TABLE sealed_keys (
    id             INTEGER PRIMARY KEY,
    certificate_id INTEGER REFERENCES certificates(id),
    managed_id     INTEGER REFERENCES managed_certificates(id),
    kek_label      TEXT NOT NULL,
    sealed         BLOB NOT NULL,
    created_at     INTEGER NOT NULL
);

CREATE TABLE agents (
    id           INTEGER PRIMARY KEY,
    name         TEXT NOT NULL UNIQUE,
    token_sha256 BLOB NOT NULL UNIQUE,
    last_seen_at INTEGER,
    created_at   INTEGER NOT NULL
);

CREATE TABLE distribution_targets (
    id                     INTEGER PRIMARY KEY,
    managed_certificate_id INTEGER NOT NULL REFERENCES managed_certificates(id),
    agent_id               INTEGER NOT NULL REFERENCES agents(id),
    kind                   TEXT NOT NULL CHECK (kind IN ('file', 'nginx', 'haproxy', 'envoy')),
    config_json            TEXT NOT NULL DEFAULT '{}',
    created_at             INTEGER NOT NULL,
    UNIQUE (managed_certificate_id, agent_id, kind)
);

CREATE TABLE deliveries (
    id             INTEGER PRIMARY KEY,
    target_id      INTEGER NOT NULL REFERENCES distribution_targets(id),
    certificate_id INTEGER NOT NULL REFERENCES certificates(id),
    status         TEXT NOT NULL CHECK (status IN ('pending', 'delivered', 'installed', 'verified', 'failed')),
    attempts       INTEGER NOT NULL DEFAULT 0,
    last_error     TEXT,
    created_at     INTEGER NOT NULL,
    updated_at     INTEGER NOT NULL,
    verified_at    INTEGER,
    UNIQUE (target_id, certificate_id)
);
CREATE INDEX deliveries_by_status ON deliveries (status, id);

-- GCRA rate limits: the theoretical arrival time per bucket, shared by every replica.
CREATE TABLE rate_limits (
    bucket TEXT PRIMARY KEY,
    tat_ms INTEGER NOT NULL
);

CREATE TABLE api_tokens (
    id           INTEGER PRIMARY KEY,
    name         TEXT NOT NULL,
    token_sha256 BLOB NOT NULL UNIQUE,
    scope        TEXT NOT NULL CHECK (scope IN ('read', 'admin')),
    created_at   INTEGER NOT NULL,
    last_used_at INTEGER,
    revoked_at   INTEGER
);

-- The audit log: append-only, hash-chained. audit_head holds the chain's tip; appending locks it, so entries get
-- consecutive sequence numbers and each hash covers the previous one, across replicas.
CREATE TABLE audit_log (
    seq          INTEGER PRIMARY KEY,
    at           INTEGER NOT NULL,
    actor        TEXT NOT NULL,
    action       TEXT NOT NULL,
    subject      TEXT NOT NULL,
    details_json TEXT NOT NULL,
    prev_hash    BLOB NOT NULL,
    hash         BLOB NOT NULL
);
CREATE TABLE audit_head (
    id   INTEGER PRIMARY KEY CHECK (id = 1),
    seq  INTEGER NOT NULL,
    hash BLOB NOT NULL
);
INSERT INTO audit_head (id, seq, hash) VALUES (1, 0, zeroblob(32));

-- Nothing in Castellan updates or deletes audit rows; the database refuses it too. (Someone with the database's
-- owner rights can drop these triggers: that is what the hash chain and `castellan audit verify` are for.)
CREATE TRIGGER audit_log_no_update BEFORE UPDATE ON audit_log
BEGIN SELECT RAISE(ABORT, 'audit_log is append-only'); END;
CREATE TRIGGER audit_log_no_delete BEFORE DELETE ON audit_log
BEGIN SELECT RAISE(ABORT, 'audit_log is append-only'); END;
