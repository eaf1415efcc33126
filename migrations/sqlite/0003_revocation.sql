-- Revocation that every replica can see and publish.

-- A counter each revocation transaction advances (one row, so it also serializes revocations). Replicas poll it to
-- learn that something was revoked (by ACME, the CLI, or another replica) and read exactly the rows of the new
-- epochs: clock skew between replicas cannot hide a revocation, as it could with revoked_at.
CREATE TABLE revocation_epoch (
    id    INTEGER PRIMARY KEY CHECK (id = 1),
    epoch INTEGER NOT NULL
);
INSERT INTO revocation_epoch (id, epoch) VALUES (1, 0);
ALTER TABLE revocations ADD COLUMN epoch INTEGER NOT NULL DEFAULT 0;
CREATE INDEX revocations_by_epoch ON revocations (epoch, certificate_id);

-- The revocation epoch the last numbered CRL was built from: a replica that read older revocations than the last
-- CRL did is refused the next number, so a higher CRL number never lists less (RFC 5280 §5.2.3).
ALTER TABLE crl_numbers ADD COLUMN epoch INTEGER NOT NULL DEFAULT 0;
