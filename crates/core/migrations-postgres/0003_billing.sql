-- Billing (guide §1): price book, soft caps, usage events (idempotent by source + id), rollups
-- maintained at ingest, periods, immutable invoices.

CREATE TABLE billing_plans (
    tenant_id  TEXT PRIMARY KEY NOT NULL REFERENCES tenants(id),
    currency   TEXT NOT NULL,
    updated_at BIGINT NOT NULL
);

CREATE TABLE billing_prices (
    tenant_id    TEXT NOT NULL REFERENCES tenants(id),
    sku          TEXT NOT NULL,
    description  TEXT NOT NULL,
    unit         TEXT NOT NULL,
    unit_price   TEXT NOT NULL,            -- decimal, major currency units per unit
    cap_micro    BIGINT,                  -- soft cap on the period's quantity, in millionths
    updated_at   BIGINT NOT NULL,
    PRIMARY KEY (tenant_id, sku)
);

-- Raw events: permanent idempotency by (source, id). Quantities in millionths of a unit.
CREATE TABLE usage_events (
    tenant_id     TEXT NOT NULL,
    source        TEXT NOT NULL,
    event_id      TEXT NOT NULL,
    ts            BIGINT NOT NULL,
    period_start  BIGINT NOT NULL,
    sku           TEXT NOT NULL,
    qty_micro     BIGINT NOT NULL,
    key_id        TEXT NOT NULL,           -- '' when not attributed
    persona_id    TEXT NOT NULL,
    bu_id         TEXT NOT NULL,
    ingested_at   BIGINT NOT NULL,
    PRIMARY KEY (tenant_id, source, event_id)
);

-- Sums per period, day, SKU and driver, updated in the ingesting transaction: every billing
-- read (live meter, drill-down, showback, charts, invoices) reads these, never raw events.
CREATE TABLE usage_rollups (
    tenant_id     TEXT NOT NULL,
    period_start  BIGINT NOT NULL,
    day           BIGINT NOT NULL,        -- UTC day start, ms
    sku           TEXT NOT NULL,
    key_id        TEXT NOT NULL,
    persona_id    TEXT NOT NULL,
    bu_id         TEXT NOT NULL,
    qty_micro     BIGINT NOT NULL,
    events        BIGINT NOT NULL,
    PRIMARY KEY (tenant_id, period_start, sku, day, key_id, persona_id, bu_id)
);

-- Soft-cap thresholds already raised (80, 100, 120 %), once per period and SKU.
CREATE TABLE billing_cap_alerts (
    tenant_id     TEXT NOT NULL,
    period_start  BIGINT NOT NULL,
    sku           TEXT NOT NULL,
    threshold     BIGINT NOT NULL,
    raised_at     BIGINT NOT NULL,
    PRIMARY KEY (tenant_id, period_start, sku, threshold)
);

CREATE TABLE invoices (
    tenant_id     TEXT NOT NULL REFERENCES tenants(id),
    id            TEXT NOT NULL,
    number        TEXT NOT NULL,
    period_start  BIGINT NOT NULL,
    period_end    BIGINT NOT NULL,
    currency      TEXT NOT NULL,
    total         TEXT NOT NULL,
    lines         TEXT NOT NULL,           -- JSON: the frozen line items
    issued_at     BIGINT NOT NULL,
    issued_by     TEXT NOT NULL,
    PRIMARY KEY (tenant_id, id),
    UNIQUE (tenant_id, number),
    UNIQUE (tenant_id, period_start)
);

-- Invoices are immutable: never changed, never deleted.
CREATE FUNCTION invoices_immutable() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'invoices are immutable';
END;
$$;
CREATE TRIGGER invoices_immutable BEFORE UPDATE ON invoices
    FOR EACH ROW EXECUTE FUNCTION invoices_immutable();
CREATE TRIGGER invoices_undeletable BEFORE DELETE ON invoices
    FOR EACH ROW EXECUTE FUNCTION invoices_immutable();
