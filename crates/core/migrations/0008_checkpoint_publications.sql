-- Signed checkpoints published where the tenant keeps them (issue #12, item 14): the outbox of
-- publications (on demand or scheduled) that the `serve` worker posts, and where each went.
--
-- This is delivery state and a record for display only. `audit verify --published` reads the
-- checkpoints back from the platforms themselves and never from here: a rollback of this
-- database would roll this table back too.

CREATE TABLE audit_publications (
    id            INTEGER PRIMARY KEY AUTOINCREMENT,
    tenant_id     TEXT NOT NULL REFERENCES tenants(id),
    reason        TEXT NOT NULL CHECK (reason IN ('on_demand', 'scheduled')),
    requested_by  TEXT,                    -- the persona who asked (on demand)
    requested_at  INTEGER NOT NULL,
    state         TEXT NOT NULL DEFAULT 'pending' CHECK (state IN ('pending', 'published', 'failed')),
    not_before    INTEGER NOT NULL,        -- retries back off
    lease_until   INTEGER,                 -- a worker is posting it until then
    attempts      INTEGER NOT NULL DEFAULT 0,
    last_error    TEXT,
    size          INTEGER,                 -- the tree size of the checkpoint posted
    published_at  INTEGER,
    head_after    INTEGER,                 -- the ledger's size once the publication's entry is in
    posted        TEXT                     -- JSON: where it was posted (kind, workspace, channel, message id)
);
CREATE INDEX audit_publications_tenant ON audit_publications (tenant_id, state, published_at);
CREATE INDEX audit_publications_pending ON audit_publications (state, not_before);
