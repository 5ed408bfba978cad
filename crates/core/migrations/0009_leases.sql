-- Leases (issue #14): a duty or a piece of work claimed by one process at a time — the approvals
-- worker, the checkpoint publisher, a chat platform's digest, the syncing of one approval
-- message — until the holder renews or releases it, or it expires (its holder died).

CREATE TABLE leases (
    name      TEXT PRIMARY KEY NOT NULL,
    holder    TEXT NOT NULL,               -- the replica id of the process holding it
    until_ms  INTEGER NOT NULL             -- expires then unless renewed
);
