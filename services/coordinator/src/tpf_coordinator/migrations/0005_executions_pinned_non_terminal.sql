-- tpf:no-transaction
-- Release drift counts the non-terminal executions pinned to each release of a pipeline
-- (GROUP BY release_version, status). Only non-terminal rows are in this index, so the count is
-- an index-only scan over live work however many finished executions the table holds. Built
-- CONCURRENTLY so that a large executions table keeps taking writes meanwhile; that cannot run
-- in a transaction, hence the marker above and IF NOT EXISTS (a crash before the migration is
-- recorded runs it again). A build interrupted half-way leaves an INVALID index that IF NOT
-- EXISTS does not rebuild: counts stay right but scan the table; `REINDEX INDEX CONCURRENTLY
-- executions_pinned_non_terminal` repairs it. The status list is the non-terminal half of the
-- domain's ExecutionStatus, in its order; the drift query writes the same list so the planner
-- can use the index.
CREATE INDEX CONCURRENTLY IF NOT EXISTS executions_pinned_non_terminal
    ON executions (tenant_id, pipeline_id, release_version, status)
    WHERE status IN ('QUEUED', 'RUNNING', 'WAITING_EXTERNAL', 'WAIT_RETRY');
