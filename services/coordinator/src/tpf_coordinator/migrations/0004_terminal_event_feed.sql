-- The terminal-event feed (docs/sqs-bridge.md): consumers read the terminal transitions of
-- `execution_history` after a position, and keep that position durably in `event_cursors`.
--
-- Why not a cursor on `execution_history.id`: identity values are handed out at INSERT and become
-- visible at COMMIT, so under concurrency id 105 may commit while id 104 is still in flight; a
-- reader that moved past 105 would never see 104. Instead every history row records the id of
-- the transaction that wrote it, and the feed is ordered by (xact_id, id). A reader takes only
-- rows whose transaction is older than the oldest transaction still running in its snapshot
-- (`pg_snapshot_xmin(pg_current_snapshot())`): every such transaction has ended, so no row can
-- appear later before the reader's position. A long-running transaction delays the feed (never
-- loses from it). xid8 is the 64-bit, epoch-extended id: it never wraps around.
--
-- Added without a default first so that existing rows are not rewritten (they keep NULL and
-- are before every cursor: a cursor is created at the end of the feed); then the default applies
-- to every new row, whichever statement inserts it.
ALTER TABLE execution_history ADD COLUMN xact_id xid8;
ALTER TABLE execution_history ALTER COLUMN xact_id SET DEFAULT pg_current_xact_id();

-- Only terminal transitions are in this index, so the feed scan never walks the steps; the
-- statuses are those of `ExecutionStatus.is_terminal`.
CREATE INDEX execution_history_terminal_feed
    ON execution_history (xact_id, id)
    WHERE xact_id IS NOT NULL AND to_status IN ('SUCCEEDED', 'FAILED', 'DLQ', 'CANCELLED');

-- A consumer's durable position in the feed, per consumer id and tenant set (empty: every
-- tenant). It only moves forward (the advance is conditional on the stored position being
-- behind), so consumers sharing it never move it back. It is a reader's bookmark, not execution
-- state: no history row is written for it.
CREATE TABLE event_cursors (
    consumer_id       text    NOT NULL,
    tenant_ids        text[]  NOT NULL,
    position_xact_id  xid8    NOT NULL,
    position_id       bigint  NOT NULL,
    version           bigint  NOT NULL DEFAULT 0,
    created_at_ms     bigint  NOT NULL,
    updated_at_ms     bigint  NOT NULL,
    updated_by        text    NOT NULL,
    PRIMARY KEY (consumer_id, tenant_ids)
);
