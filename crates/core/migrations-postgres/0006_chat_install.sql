-- Slack's OAuth v2 install flow: a tenant admin's one-time install state, and the bot token the
-- install hands back, envelope-encrypted per workspace (MasterKey::seal).

ALTER TABLE chat_workspaces ADD COLUMN bot_token_sealed BYTEA;

CREATE TABLE chat_install_states (
    digest           BYTEA PRIMARY KEY,         -- keyed digest of the state; the state is shown once
    tenant_id        TEXT NOT NULL REFERENCES tenants(id),
    persona_id       TEXT NOT NULL,
    platform         TEXT NOT NULL,
    approval_channel TEXT,
    expires_at       BIGINT NOT NULL,
    used_at          BIGINT
);

-- What each posted approval message last showed (`state:decisions`), so any process's changes
-- (a decision in the CLI, an agent's request over MCP stdio) are brought to chat by the server.
ALTER TABLE chat_messages ADD COLUMN rendered TEXT;
