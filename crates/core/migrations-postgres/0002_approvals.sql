-- Approvals (guide §5): routes, requests bound to a digest, decisions.

CREATE TABLE approval_routes (
    tenant_id           TEXT NOT NULL REFERENCES tenants(id),
    id                  TEXT NOT NULL,
    name                TEXT NOT NULL,
    operation           TEXT NOT NULL,      -- the trigger: an operation name
    condition           TEXT NOT NULL,      -- JSON array of clauses over facts and input ([] = always)
    approver_personas   TEXT NOT NULL,      -- JSON array of persona ids
    approver_roles      TEXT NOT NULL,      -- JSON array of role names
    quorum              BIGINT NOT NULL CHECK (quorum >= 1),
    sla_secs            BIGINT NOT NULL,
    expiry_secs         BIGINT NOT NULL,
    escalation_persona  TEXT,
    created_at          BIGINT NOT NULL,
    PRIMARY KEY (tenant_id, id),
    UNIQUE (tenant_id, name)
);

CREATE TABLE approval_requests (
    tenant_id          TEXT NOT NULL REFERENCES tenants(id),
    id                 TEXT NOT NULL,
    operation          TEXT NOT NULL,
    input              TEXT NOT NULL,       -- canonical JSON, exactly what was requested
    facts              TEXT NOT NULL,       -- JSON object
    summary            TEXT NOT NULL,       -- what will happen, for the approver
    digest             TEXT NOT NULL,       -- hex SHA-256 of canonical {tenant, operation, input, requester}
    requester          TEXT NOT NULL,       -- persona id
    requester_kind     TEXT NOT NULL,
    requester_via      TEXT NOT NULL,
    requester_surface  TEXT NOT NULL,
    requester_scopes   TEXT NOT NULL,       -- JSON array: the scopes the request was made with
    route_id           TEXT,                -- NULL: the default route of destructive operations
    approver_personas  TEXT NOT NULL,       -- the route's approvers, as of the request
    approver_roles     TEXT NOT NULL,
    escalation_persona TEXT,
    quorum             BIGINT NOT NULL,
    state              TEXT NOT NULL CHECK (state IN ('pending', 'approved', 'executing', 'succeeded',
                                                      'failed', 'rejected', 'expired', 'cancelled')),
    created_at         BIGINT NOT NULL,
    sla_at             BIGINT NOT NULL,
    expires_at         BIGINT NOT NULL,
    escalated_at       BIGINT,
    decided_at         BIGINT,
    lease_until        BIGINT,             -- while executing: when a stalled execution may be resumed
    finished_at        BIGINT,
    result             TEXT,                -- JSON output on success (never a secret)
    error              TEXT,
    break_glass_by     TEXT,
    break_glass_reason TEXT,
    review_state       TEXT CHECK (review_state IN ('required', 'done')),
    reviewed_by        TEXT,
    review_comment     TEXT,
    reviewed_at        BIGINT,
    PRIMARY KEY (tenant_id, id)
);
CREATE INDEX approval_requests_by_state ON approval_requests (state, tenant_id);
CREATE INDEX approval_requests_by_requester ON approval_requests (tenant_id, requester, state);

CREATE TABLE approval_decisions (
    tenant_id   TEXT NOT NULL,
    request_id  TEXT NOT NULL,
    persona_id  TEXT NOT NULL,
    decision    TEXT NOT NULL CHECK (decision IN ('approve', 'reject')),
    comment     TEXT,
    via         TEXT NOT NULL,
    surface     TEXT NOT NULL,
    decided_at  BIGINT NOT NULL,
    PRIMARY KEY (tenant_id, request_id, persona_id),
    FOREIGN KEY (tenant_id, request_id) REFERENCES approval_requests (tenant_id, id)
);
