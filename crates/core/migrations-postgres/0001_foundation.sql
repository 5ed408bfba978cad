-- PostgreSQL twin of migrations/0001_foundation.sql: the same tables, with BIGINT for integers, BYTEA for
-- blobs and BOOLEAN for flags, so that every repository statement reads the same types on both.

-- Foundation: tenants, members (personas, roles, business units), API keys, audit ledger.
-- Every tenant-owned table carries tenant_id and keys its rows by it; nothing is addressed by id alone.
-- Timestamps are BIGINT milliseconds since the Unix epoch, UTC.

CREATE TABLE tenants (
    id                TEXT PRIMARY KEY NOT NULL,
    name              TEXT NOT NULL,
    created_at        BIGINT NOT NULL,
    audit_verifier    TEXT NOT NULL          -- C2SP vkey of the tenant's checkpoint signer (public)
);

CREATE TABLE business_units (
    tenant_id   TEXT NOT NULL REFERENCES tenants(id),
    id          TEXT NOT NULL,
    name        TEXT NOT NULL,
    kind        TEXT NOT NULL,
    parent_id   TEXT,
    created_at  BIGINT NOT NULL,
    PRIMARY KEY (tenant_id, id),
    UNIQUE (tenant_id, name),
    FOREIGN KEY (tenant_id, parent_id) REFERENCES business_units (tenant_id, id)
);

CREATE TABLE personas (
    tenant_id     TEXT NOT NULL REFERENCES tenants(id),
    id            TEXT NOT NULL,
    handle        TEXT NOT NULL,
    kind          TEXT NOT NULL CHECK (kind IN ('human', 'service', 'agent')),
    display_name  TEXT,
    email         TEXT,
    invite_state  TEXT CHECK (invite_state IN ('invited', 'accepted')),
    status        TEXT NOT NULL CHECK (status IN ('active', 'revoked')),
    bu_id         TEXT,
    created_at    BIGINT NOT NULL,
    revoked_at    BIGINT,
    PRIMARY KEY (tenant_id, id),
    UNIQUE (tenant_id, handle),
    FOREIGN KEY (tenant_id, bu_id) REFERENCES business_units (tenant_id, id)
);

CREATE TABLE role_assignments (
    tenant_id    TEXT NOT NULL,
    persona_id   TEXT NOT NULL,
    role         TEXT NOT NULL,
    assigned_at  BIGINT NOT NULL,
    PRIMARY KEY (tenant_id, persona_id, role),
    FOREIGN KEY (tenant_id, persona_id) REFERENCES personas (tenant_id, id)
);

CREATE TABLE api_keys (
    tenant_id     TEXT NOT NULL,
    id            TEXT NOT NULL,
    persona_id    TEXT NOT NULL,
    name          TEXT NOT NULL,
    scopes        TEXT NOT NULL,             -- JSON array of scope names
    hint          TEXT NOT NULL,             -- `tops_…abcd`, never the secret
    created_at    BIGINT NOT NULL,
    created_by    TEXT NOT NULL,
    expires_at    BIGINT,
    last_used_at  BIGINT,
    rotated_at    BIGINT,
    revoked_at    BIGINT,
    PRIMARY KEY (tenant_id, id),
    UNIQUE (tenant_id, name),
    FOREIGN KEY (tenant_id, persona_id) REFERENCES personas (tenant_id, id)
);

-- The secrets a key answers to: the current one (not_after NULL) and, after a rotation, the
-- previous one until its grace window ends. Only a keyed digest is stored.
CREATE TABLE api_key_secrets (
    digest      BYTEA PRIMARY KEY NOT NULL,
    tenant_id   TEXT NOT NULL,
    key_id      TEXT NOT NULL,
    created_at  BIGINT NOT NULL,
    not_after   BIGINT,
    FOREIGN KEY (tenant_id, key_id) REFERENCES api_keys (tenant_id, id)
);
CREATE INDEX api_key_secrets_by_key ON api_key_secrets (tenant_id, key_id);

-- The audit ledger: append-only, hash-chained, committed to an RFC 6962 Merkle tree.
CREATE TABLE audit_entries (
    tenant_id  TEXT NOT NULL,
    seq        BIGINT NOT NULL,
    body       TEXT NOT NULL,                -- canonical JSON; the leaf data
    leaf_hash  BYTEA NOT NULL,                -- SHA-256(0x00 || body)
    PRIMARY KEY (tenant_id, seq)
);

-- The running head of each tenant's ledger: size, last leaf hash, compact Merkle range, and the
-- latest signed checkpoint.
CREATE TABLE audit_heads (
    tenant_id   TEXT PRIMARY KEY NOT NULL REFERENCES tenants(id),
    size        BIGINT NOT NULL,
    last_hash   BYTEA NOT NULL,
    frontier    BYTEA NOT NULL,
    checkpoint  TEXT NOT NULL
);

-- Checkpoints kept for history: one at every multiple of the checkpoint interval.
CREATE TABLE audit_checkpoints (
    tenant_id  TEXT NOT NULL,
    size       BIGINT NOT NULL,
    note       TEXT NOT NULL,
    PRIMARY KEY (tenant_id, size)
);
