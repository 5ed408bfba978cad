-- The sealing service and BYOK (issue #15, guide §9).
--
-- Every tenant's sealed values (persona emails and display names, chat bot tokens, and what later
-- sections store) are encrypted under the tenant's data key of an epoch; each data key is wrapped
-- by a key-encryption key: the platform's (derived from the master key) or the tenant's own KMS
-- key. A rotation adds an epoch; the re-wrap moves every value to it and then drops the old ones.

CREATE TABLE tenant_data_keys (
    tenant_id   TEXT NOT NULL REFERENCES tenants(id),
    epoch       INTEGER NOT NULL,
    kek         TEXT NOT NULL,              -- `platform`, or `aws:<arn>`, `gcp:<name>`, `azure:<uri>`
    wrapped     BLOB NOT NULL,              -- the data key as the key-encryption key wrapped it
    created_at  INTEGER NOT NULL,
    PRIMARY KEY (tenant_id, epoch)
);

-- A tenant's own key (no row: the platform key). `state` is the lifecycle an admin drives;
-- `unreachable_since` is set while the KMS refuses or cannot be reached.
CREATE TABLE byok_configs (
    tenant_id          TEXT PRIMARY KEY NOT NULL REFERENCES tenants(id),
    provider           TEXT NOT NULL CHECK (provider IN ('aws', 'gcp', 'azure')),
    key_id             TEXT NOT NULL,
    state              TEXT NOT NULL CHECK (state IN ('pending_verify', 'active', 'rotating', 'revoked')),
    verified_at        INTEGER,
    verify_ok          INTEGER,
    verify_detail      TEXT,                -- JSON: each check, its result and the fix
    unreachable_since  INTEGER,
    unreachable_detail TEXT,
    rewrapped          INTEGER NOT NULL DEFAULT 0,  -- values moved to the newest epoch by the running re-wrap
    updated_at         INTEGER NOT NULL
);

-- Personal data is sealed; the plaintext columns of 0001 stay only until the upgrade pass has
-- sealed what an older version wrote (then they are NULL). `email_index` is a keyed blind index
-- for lookups by address.
ALTER TABLE personas ADD COLUMN display_name_sealed BLOB;
ALTER TABLE personas ADD COLUMN email_sealed BLOB;
ALTER TABLE personas ADD COLUMN email_index BLOB;
CREATE INDEX personas_by_email_index ON personas (tenant_id, email_index);

-- The personal fields of a call waiting for approval (e.g. the email of a persona to create),
-- sealed: the stored input carries a marker in their place; execution opens them again.
ALTER TABLE approval_requests ADD COLUMN personal_sealed BLOB;
