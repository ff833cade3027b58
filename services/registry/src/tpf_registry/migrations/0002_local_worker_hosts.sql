-- Dispatchers that run Python pipelines in-process declare what they host (ServeLocalWorkers).
-- A `local` worker record is only a declaration of intent; it can run work only while a live
-- host serves it, so ResolveWorkers (dispatch and admission) counts a `local` record only while
-- an unexpired row here matches it. Rows are replaced on every call, removed on withdrawal, and
-- ignored (then purged by the next call of any host) once `expires_at_ms` has passed.
CREATE TABLE local_worker_hosts (
    host_id          text     NOT NULL,
    pipeline_id      text     NOT NULL,
    contract_version text     NOT NULL,
    -- '' = the host names no artifact digest (matches any release's).
    artifact_digest  text     NOT NULL DEFAULT '',
    -- NULL = every tenant; otherwise the tenants the host serves.
    tenant_ids       text[],
    -- NULL = any release; otherwise the release versions the host claims work for.
    release_versions text[],
    expires_at_ms    bigint   NOT NULL,
    PRIMARY KEY (host_id, pipeline_id, contract_version, artifact_digest)
);

CREATE INDEX local_worker_hosts_by_contract
    ON local_worker_hosts (pipeline_id, contract_version);

CREATE INDEX workers_local_by_contract
    ON workers (pipeline_id, contract_version) WHERE protocol = 'local';
