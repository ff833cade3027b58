-- Coordinator schema: executions and their append-only history, await units and interactions,
-- dead letters, and request-id dedupe of mutating RPCs. Times are epoch milliseconds (bigint),
-- the unit of TPF's wire. Status columns are CHECK-constrained to the names of the domain enums.

CREATE TABLE executions (
    tenant_id                  text    NOT NULL,
    execution_id               text    NOT NULL,
    pipeline_id                text    NOT NULL,
    contract_version           text    NOT NULL,
    release_version            text    NOT NULL,
    status                     text    NOT NULL CHECK (status IN (
                                   'QUEUED', 'RUNNING', 'WAITING_EXTERNAL', 'WAIT_RETRY',
                                   'SUCCEEDED', 'FAILED', 'DLQ', 'CANCELLED')),
    step_index                 int     NOT NULL DEFAULT 0,
    attempt                    int     NOT NULL DEFAULT 0,
    -- The fencing token: every transition writes version + 1, conditional on the old value.
    version                    bigint  NOT NULL DEFAULT 0,
    input_shape                text    NOT NULL CHECK (input_shape IN ('UNI', 'MULTI', 'RAW')),
    result_shape               text    NOT NULL
                                   CHECK (result_shape IN ('SINGLE', 'MATERIALIZED_MULTI')),
    idempotency_key            text    NOT NULL,
    -- sha256 of the submitted input: a reused key with another input is refused.
    input_fingerprint          text    NOT NULL,
    next_due_at_ms             bigint  NOT NULL,
    lease_owner                text    NOT NULL DEFAULT '',
    lease_expires_at_ms        bigint  NOT NULL DEFAULT 0,
    consecutive_lease_expiries int     NOT NULL DEFAULT 0,
    error_code                 text,
    error_message              text,
    terminal_reason            text    NOT NULL DEFAULT '',
    await_unit_id              text    NOT NULL DEFAULT '',
    -- The envelope the current step consumes: the submission's input snapshot at step 0, then
    -- each step's output, or an interaction's response after an await. Large payloads live in
    -- the object store and `payload_ref` names them.
    payload_type_id            text,
    payload_encoding           text,
    payload                    text,
    payload_ref                text,
    -- The result of a SUCCEEDED execution (a JSON array of envelopes, as the worker sent them).
    result                     text,
    result_ref                 text,
    created_at_ms              bigint  NOT NULL,
    updated_at_ms              bigint  NOT NULL,
    PRIMARY KEY (tenant_id, execution_id)
);

CREATE UNIQUE INDEX executions_idempotency
    ON executions (tenant_id, pipeline_id, idempotency_key);
-- Only runnable rows are in this index, so a claim's SKIP LOCKED scan never walks the parked,
-- running or finished executions, however many there are.
CREATE INDEX executions_runnable
    ON executions (next_due_at_ms) WHERE status IN ('QUEUED', 'WAIT_RETRY');
CREATE INDEX executions_running_leases
    ON executions (lease_expires_at_ms) WHERE status = 'RUNNING';
CREATE INDEX executions_listing ON executions (tenant_id, created_at_ms DESC, execution_id DESC);

CREATE TABLE execution_history (
    id                bigint  GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    tenant_id         text    NOT NULL,
    execution_id      text    NOT NULL,
    -- The version the transition wrote. Unique per execution: a second commit of the same
    -- transition (a stale claimant, a retried RPC) cannot be recorded.
    version           bigint  NOT NULL,
    event             text    NOT NULL CHECK (event IN (
                          'SUBMITTED', 'CLAIMED', 'STEP_COMPLETED', 'SUCCEEDED',
                          'AWAIT_REQUESTED', 'INTERACTION_COMPLETED', 'RETRY_SCHEDULED',
                          'FAILED', 'LEASE_EXPIRED', 'AWAIT_TIMED_OUT', 'REDRIVEN',
                          'CANCELLED')),
    from_status       text,
    to_status         text    NOT NULL,
    step_index        int     NOT NULL,
    attempt           int     NOT NULL,
    actor             text    NOT NULL,
    reason            text    NOT NULL DEFAULT '',
    error_code        text,
    error_message     text,
    retryable         boolean,
    release_version   text    NOT NULL,
    occurred_at_ms    bigint  NOT NULL,
    UNIQUE (tenant_id, execution_id, version)
);

CREATE TABLE await_units (
    tenant_id              text   NOT NULL,
    unit_id                text   NOT NULL,
    execution_id           text   NOT NULL,
    step_id                text   NOT NULL,
    step_index             int    NOT NULL,
    cardinality            text   NOT NULL DEFAULT 'ONE_TO_ONE',
    version                bigint NOT NULL DEFAULT 0,
    status                 text   NOT NULL CHECK (status IN (
                               'WAITING_EXTERNAL', 'COMPLETED', 'FAILED', 'TIMED_OUT',
                               'CANCELLED', 'EXPIRED')),
    primary_interaction_id text   NOT NULL DEFAULT '',
    expected_item_count    int    NOT NULL DEFAULT 1,
    completed_item_count   int    NOT NULL DEFAULT 0,
    deadline_ms            bigint NOT NULL,
    created_at_ms          bigint NOT NULL,
    updated_at_ms          bigint NOT NULL,
    PRIMARY KEY (tenant_id, unit_id)
);

CREATE TABLE interactions (
    tenant_id             text    NOT NULL,
    interaction_id        text    NOT NULL,
    unit_id               text    NOT NULL,
    execution_id          text    NOT NULL,
    step_id               text    NOT NULL,
    step_index            int     NOT NULL,
    output_type           text    NOT NULL DEFAULT '',
    correlation_id        text    NOT NULL,
    idempotency_key       text    NOT NULL,
    causation_id          text    NOT NULL DEFAULT '',
    item_index            int,
    version               bigint  NOT NULL DEFAULT 0,
    status                text    NOT NULL CHECK (status IN (
                              'WAITING', 'DISPATCHING', 'DISPATCHED', 'COMPLETED', 'FAILED',
                              'TIMED_OUT', 'CANCELLED', 'EXPIRED')),
    -- The await step's input as plain JSON (TPF shows it as `requestPayload`).
    request_payload       jsonb,
    response_type_id      text,
    response_encoding     text,
    response              text,
    actor                 text    NOT NULL DEFAULT '',
    assignee              text,
    "group"               text,
    transport_type        text    NOT NULL DEFAULT 'interaction-api',
    transport_metadata    jsonb   NOT NULL DEFAULT '{}'::jsonb,
    deadline_ms           bigint  NOT NULL,
    created_at_ms         bigint  NOT NULL,
    updated_at_ms         bigint  NOT NULL,
    completed_at_ms       bigint,
    PRIMARY KEY (tenant_id, interaction_id),
    FOREIGN KEY (tenant_id, unit_id) REFERENCES await_units (tenant_id, unit_id)
);

CREATE UNIQUE INDEX interactions_correlation ON interactions (tenant_id, correlation_id);
CREATE INDEX interactions_pending
    ON interactions (tenant_id, deadline_ms, created_at_ms, interaction_id)
    WHERE status IN ('WAITING', 'DISPATCHING', 'DISPATCHED');
CREATE INDEX interactions_by_execution ON interactions (tenant_id, execution_id);

CREATE TABLE dead_letters (
    id                bigint  GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    tenant_id         text    NOT NULL,
    execution_id      text    NOT NULL,
    -- The version of the FAILED transition that wrote this dead letter.
    execution_version bigint  NOT NULL,
    pipeline_id       text    NOT NULL,
    contract_version  text    NOT NULL,
    release_version   text    NOT NULL,
    step_index        int     NOT NULL,
    attempt           int     NOT NULL,
    transition_key    text    NOT NULL,
    terminal_reason   text    NOT NULL,
    error_code        text    NOT NULL,
    error_message     text    NOT NULL,
    retryable         boolean NOT NULL,
    created_at_ms     bigint  NOT NULL,
    redriven_at_ms    bigint,
    redriven_by       text,
    redrive_reason    text,
    UNIQUE (tenant_id, execution_id, execution_version)
);

CREATE INDEX dead_letters_listing ON dead_letters (tenant_id, created_at_ms DESC, id DESC);
CREATE INDEX dead_letters_pending ON dead_letters (tenant_id, id) WHERE redriven_at_ms IS NULL;

-- Responses of mutating RPCs by request id, so a retried call returns the first answer.
CREATE TABLE request_ids (
    scope          text   NOT NULL,
    request_id     text   NOT NULL,
    request_hash   text   NOT NULL,
    response       bytea  NOT NULL,
    created_at_ms  bigint NOT NULL,
    PRIMARY KEY (scope, request_id)
);

CREATE INDEX request_ids_age ON request_ids (created_at_ms);
