-- Chat surfaces (Slack, Discord): which workspace belongs to which tenant, which chat user is
-- which human persona, one-time link codes, the messages approval requests were posted as, and
-- deliveries already handled (exactly-once under retries and redelivery).

CREATE TABLE chat_workspaces (
    platform         TEXT NOT NULL CHECK (platform IN ('slack', 'discord')),
    workspace_id     TEXT NOT NULL,            -- Slack team id, Discord guild id
    tenant_id        TEXT NOT NULL REFERENCES tenants(id),
    name             TEXT,
    approval_channel TEXT,                     -- where approval requests are posted
    digest_channel   TEXT,                     -- where the scheduled /billing digest goes
    digest_every_ms  BIGINT,
    digest_last_ms   BIGINT,
    bound_at         BIGINT NOT NULL,
    bound_by         TEXT NOT NULL,            -- the persona the scheduled digest runs as
    PRIMARY KEY (platform, workspace_id)
);
CREATE INDEX chat_workspaces_tenant ON chat_workspaces (tenant_id);

CREATE TABLE chat_links (
    platform     TEXT NOT NULL,
    workspace_id TEXT NOT NULL,
    user_id      TEXT NOT NULL,                -- immutable platform user id, never a name
    tenant_id    TEXT NOT NULL REFERENCES tenants(id),
    persona_id   TEXT NOT NULL,
    linked_at    BIGINT NOT NULL,
    PRIMARY KEY (platform, workspace_id, user_id)
);
CREATE INDEX chat_links_persona ON chat_links (tenant_id, persona_id);

CREATE TABLE chat_link_codes (
    digest     BYTEA PRIMARY KEY,               -- keyed digest of the code; the code is shown once
    tenant_id  TEXT NOT NULL REFERENCES tenants(id),
    persona_id TEXT NOT NULL,
    expires_at BIGINT NOT NULL,
    used_at    BIGINT
);

CREATE TABLE chat_messages (
    tenant_id    TEXT NOT NULL REFERENCES tenants(id),
    request_id   TEXT NOT NULL,
    platform     TEXT NOT NULL,
    workspace_id TEXT NOT NULL,
    channel      TEXT NOT NULL,
    message_id   TEXT NOT NULL,                -- Slack ts, Discord message id
    PRIMARY KEY (tenant_id, request_id, platform, workspace_id)
);

CREATE TABLE chat_deliveries (
    platform    TEXT NOT NULL,
    delivery_id TEXT NOT NULL,
    received_at BIGINT NOT NULL,
    PRIMARY KEY (platform, delivery_id)
);
