-- Billing: compact raw usage events. An event row keeps its idempotency key (tenant, source, id),
-- its time, quantity and ingestion time, and names what it is charged to — SKU, key, persona,
-- BU — by a per-tenant number into `usage_attributions` instead of repeating those four texts.
-- Ingestion writes every event once, so the row's size is much of its cost: this is less than
-- half the old one. The key stays the texts in their order (not a hash of them), so ids a
-- reporter numbers or stamps in sequence land next to each other in the B-tree.

-- Each distinct (SKU, key, persona, BU) a tenant's usage was charged to, numbered per tenant.
CREATE TABLE usage_attributions (
    tenant_id     TEXT NOT NULL,
    id            BIGINT NOT NULL,        -- per tenant, from 1
    sku           TEXT NOT NULL,
    key_id        TEXT NOT NULL,           -- '' when not attributed
    persona_id    TEXT NOT NULL,
    bu_id         TEXT NOT NULL,
    PRIMARY KEY (tenant_id, id),
    UNIQUE (tenant_id, sku, key_id, persona_id, bu_id)
);

-- Raw events: permanent idempotency by (source, id). Quantities in millionths of a unit.
CREATE TABLE usage_events_compact (
    tenant_id     TEXT NOT NULL,
    source        TEXT NOT NULL,
    event_id      TEXT NOT NULL,
    ts            BIGINT NOT NULL,        -- ms; its period and day follow from it
    qty_micro     BIGINT NOT NULL,
    attribution   BIGINT NOT NULL,        -- usage_attributions.id of the same tenant
    ingested_at   BIGINT NOT NULL,
    PRIMARY KEY (tenant_id, source, event_id)
);

INSERT INTO usage_attributions (tenant_id, id, sku, key_id, persona_id, bu_id)
SELECT tenant_id,
       ROW_NUMBER() OVER (PARTITION BY tenant_id ORDER BY sku, key_id, persona_id, bu_id),
       sku, key_id, persona_id, bu_id
FROM (SELECT DISTINCT tenant_id, sku, key_id, persona_id, bu_id FROM usage_events) AS d;

INSERT INTO usage_events_compact (tenant_id, source, event_id, ts, qty_micro, attribution, ingested_at)
SELECT e.tenant_id, e.source, e.event_id, e.ts, e.qty_micro, a.id, e.ingested_at
FROM usage_events e
JOIN usage_attributions a
  ON a.tenant_id = e.tenant_id AND a.sku = e.sku AND a.key_id = e.key_id
 AND a.persona_id = e.persona_id AND a.bu_id = e.bu_id;

DROP TABLE usage_events;
ALTER TABLE usage_events_compact RENAME TO usage_events;
