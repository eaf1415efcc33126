-- ACME state: what the first schema lacked once the code was written.

-- The position of each authorization in its order's list, so the order object lists them as created (RFC 8555
-- §7.1.3): reused authorizations have older ids than new ones, so the id alone cannot give the order back.
ALTER TABLE order_authorizations ADD COLUMN ordinal BIGINT NOT NULL DEFAULT 0;
-- A challenge's outcome updates every order that links its authorization: found by authorization, not order.
CREATE INDEX order_authorizations_by_authorization ON order_authorizations (authorization_id, order_id);
-- Recovery of orders left in 'processing' by a replica that died mid-finalization, without scanning all orders.
CREATE INDEX orders_by_status ON orders (status, id);
-- When a validation started: one left 'processing' by a replica that died is found and closed after a while.
ALTER TABLE challenges ADD COLUMN started_at BIGINT;
CREATE INDEX challenges_processing ON challenges (status, started_at);
