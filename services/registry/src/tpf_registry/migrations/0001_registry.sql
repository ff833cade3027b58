-- Release registry schema: releases with their artifacts and contract, the activation history,
-- worker records, and an append-only event log of every registry state change.
-- Times are epoch milliseconds (bigint), the unit TPF's wire uses, so no conversion can drift.

CREATE TABLE releases (
    tenant_id                   text    NOT NULL,
    pipeline_id                 text    NOT NULL,
    release_version             text    NOT NULL,
    -- Insertion order, for "oldest first" listing and page cursors.
    seq                         bigint  GENERATED ALWAYS AS IDENTITY,
    contract_version            text    NOT NULL,
    status                      text    NOT NULL CHECK (status IN ('REGISTERED', 'ACTIVE')),
    version                     bigint  NOT NULL DEFAULT 0,
    descriptor                  jsonb   NOT NULL,
    -- The parsed contract in TPF's record shape; NULL when the primary artifact embeds none.
    contract                    jsonb,
    -- The contract file's exact bytes as found in the artifact (for audits and re-validation).
    contract_raw                bytea,
    policy                      jsonb   NOT NULL,
    primary_artifact_id         text    NOT NULL,
    primary_artifact_digest     text    NOT NULL,
    primary_artifact_uri        text    NOT NULL,
    primary_artifact_size_bytes bigint  NOT NULL,
    primary_artifact_checksum   text    NOT NULL,
    -- sha256 of the immutable metadata; equal fingerprints = idempotent re-registration.
    metadata_fingerprint        text    NOT NULL,
    created_at_ms               bigint  NOT NULL,
    updated_at_ms               bigint  NOT NULL,
    activated_at_ms             bigint  NOT NULL DEFAULT 0,
    PRIMARY KEY (tenant_id, pipeline_id, release_version)
);

-- At most one ACTIVE release per tenant and pipeline, enforced by the database itself.
CREATE UNIQUE INDEX releases_one_active
    ON releases (tenant_id, pipeline_id) WHERE status = 'ACTIVE';
CREATE INDEX releases_by_seq ON releases (tenant_id, pipeline_id, seq);

CREATE TABLE release_artifacts (
    tenant_id       text    NOT NULL,
    pipeline_id     text    NOT NULL,
    release_version text    NOT NULL,
    position        int     NOT NULL,
    artifact_id     text    NOT NULL,
    kind            text    NOT NULL,
    digest          text    NOT NULL,
    source_uri      text    NOT NULL,
    stored_uri      text    NOT NULL,
    size_bytes      bigint  NOT NULL,
    has_contract    boolean NOT NULL,
    PRIMARY KEY (tenant_id, pipeline_id, release_version, position),
    FOREIGN KEY (tenant_id, pipeline_id, release_version)
        REFERENCES releases (tenant_id, pipeline_id, release_version) ON DELETE CASCADE
);

CREATE TABLE activations (
    tenant_id                text   NOT NULL,
    pipeline_id              text   NOT NULL,
    sequence                 bigint NOT NULL,
    release_version          text   NOT NULL,
    previous_release_version text   NOT NULL DEFAULT '',
    activated_by             text   NOT NULL,
    reason                   text   NOT NULL DEFAULT '',
    activated_at_ms          bigint NOT NULL,
    PRIMARY KEY (tenant_id, pipeline_id, sequence),
    FOREIGN KEY (tenant_id, pipeline_id, release_version)
        REFERENCES releases (tenant_id, pipeline_id, release_version)
);

CREATE TABLE workers (
    tenant_id              text   NOT NULL,
    pipeline_id            text   NOT NULL,
    worker_id              text   NOT NULL,
    contract_version       text   NOT NULL,
    release_version        text   NOT NULL,
    protocol               text   NOT NULL CHECK (protocol IN ('local', 'grpc', 'rest', 'sqs')),
    endpoint               text   NOT NULL,
    artifact_id            text   NOT NULL DEFAULT '',
    artifact_digest        text   NOT NULL DEFAULT '',
    registered_at_ms       bigint NOT NULL,
    last_heartbeat_at_ms   bigint NOT NULL,
    -- 0 = not draining.
    draining_since_ms      bigint NOT NULL DEFAULT 0,
    version                bigint NOT NULL DEFAULT 0,
    PRIMARY KEY (tenant_id, pipeline_id, worker_id)
);

CREATE INDEX workers_by_release ON workers (tenant_id, pipeline_id, release_version);

-- Append-only: one row per registry state change, written in the change's transaction.
CREATE TABLE registry_events (
    id             bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    tenant_id      text   NOT NULL,
    pipeline_id    text   NOT NULL,
    resource_kind  text   NOT NULL CHECK (resource_kind IN ('release', 'worker')),
    resource_id    text   NOT NULL,
    event          text   NOT NULL CHECK (event IN (
                       'REGISTERED', 'ACTIVATED', 'DEMOTED',
                       'WORKER_REGISTERED', 'WORKER_REVIVED', 'WORKER_DRAINING',
                       'WORKER_DEREGISTERED')),
    version        bigint NOT NULL,
    actor          text   NOT NULL,
    detail         jsonb  NOT NULL DEFAULT '{}'::jsonb,
    occurred_at_ms bigint NOT NULL
);

CREATE INDEX registry_events_by_resource
    ON registry_events (tenant_id, pipeline_id, resource_kind, resource_id, id);
