-- Tenants (the `domain` of the Basic login), their users, and the dispatch rows, with sync,
-- history and tokens. Times are 100 ns ticks since 1970-01-01T00:00:00Z (BIGINT, the precision
-- of the original's datetime2(7)); no NULLs. Every table leads with tenant_id, so the schema
-- can be distributed by tenant (e.g. Citus, tenant_id as distribution column).

CREATE TABLE tenant (
    id              BIGSERIAL PRIMARY KEY,
    domain          TEXT   NOT NULL,
    created_at      BIGINT NOT NULL,
    -- The highest stamp of any row purged: an older changes cursor must resync.
    purged_through  BIGINT NOT NULL DEFAULT 0,
    -- The last modified_dateutc stamp; writers lock this row to stamp in commit order.
    last_stamp      BIGINT NOT NULL DEFAULT 0
);
CREATE UNIQUE INDEX tenant_domain ON tenant (lower(domain));

CREATE TABLE app_user (
    id             BIGSERIAL PRIMARY KEY,
    tenant_id      BIGINT NOT NULL REFERENCES tenant (id),
    username       TEXT   NOT NULL,
    password_hash  TEXT   NOT NULL,
    role           TEXT   NOT NULL CHECK (role IN ('admin', 'dispatcher', 'technician')),
    user_id        UUID   NOT NULL,
    created_at     BIGINT NOT NULL
);
CREATE UNIQUE INDEX app_user_name ON app_user (tenant_id, lower(username));

CREATE TABLE job_dispatch_log (
    tenant_id           BIGINT  NOT NULL REFERENCES tenant (id),
    id                  UUID    NOT NULL,
    jobs_id             UUID    NOT NULL,
    user_id             UUID    NOT NULL,
    date_create         BIGINT  NOT NULL,
    date_proceeded      BIGINT  NOT NULL,
    is_accepted         BOOLEAN NOT NULL,
    is_rejected         BOOLEAN NOT NULL,
    rejected_reason     TEXT    NOT NULL,
    sys_logical_delete  BOOLEAN NOT NULL,
    is_workshop         BOOLEAN NOT NULL,
    modified_dateutc    BIGINT  NOT NULL,
    sequence            INTEGER NOT NULL,
    PRIMARY KEY (tenant_id, id)
);
CREATE UNIQUE INDEX job_dispatch_log_modified ON job_dispatch_log (tenant_id, modified_dateutc);
CREATE INDEX job_dispatch_log_job ON job_dispatch_log (tenant_id, jobs_id, sequence);
CREATE INDEX job_dispatch_log_user ON job_dispatch_log (tenant_id, user_id, modified_dateutc);

CREATE TABLE scope_exit (
    tenant_id         BIGINT NOT NULL REFERENCES tenant (id),
    user_id           UUID   NOT NULL,
    id                UUID   NOT NULL,
    modified_dateutc  BIGINT NOT NULL,
    PRIMARY KEY (tenant_id, user_id, id)
);
CREATE INDEX scope_exit_feed ON scope_exit (tenant_id, user_id, modified_dateutc);

CREATE TABLE job_dispatch_log_history (
    seq        BIGSERIAL,
    tenant_id  BIGINT NOT NULL REFERENCES tenant (id),
    id         UUID   NOT NULL,
    at         BIGINT NOT NULL,
    client_at  BIGINT NOT NULL,
    actor      TEXT   NOT NULL,
    action     TEXT   NOT NULL,
    changes    TEXT   NOT NULL,
    PRIMARY KEY (tenant_id, seq)
);
CREATE INDEX job_dispatch_log_history_row ON job_dispatch_log_history (tenant_id, id, seq);

CREATE TABLE api_token (
    id          BIGSERIAL PRIMARY KEY,
    user_pk     BIGINT NOT NULL REFERENCES app_user (id) ON DELETE CASCADE,
    token_hash  TEXT   NOT NULL UNIQUE,
    created_at  BIGINT NOT NULL
);
CREATE INDEX api_token_user ON api_token (user_pk);
