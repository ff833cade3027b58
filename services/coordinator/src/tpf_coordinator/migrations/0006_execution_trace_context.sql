-- The W3C traceparent of the call that submitted each execution, so the spans of its later
-- steps (claim, worker call, completion), made by other calls long after, join the submit's
-- trace. NULL for executions submitted before this migration, or with tracing off: their
-- spans then simply belong to the call they run in. Adding a nullable column without a
-- default is a catalog-only change: no table rewrite, however many rows.
ALTER TABLE executions ADD COLUMN trace_parent TEXT;
