-- Tenants (the `domain` of the Basic login), their users, and the dispatch rows.
-- Times are 100 ns ticks since 1970-01-01T00:00:00Z; GUIDs are 16-byte blobs; no NULLs.

CREATE TABLE tenant (
    id          INTEGER PRIMARY KEY,
    domain      TEXT    NOT NULL COLLATE NOCASE UNIQUE,
    created_at  INTEGER NOT NULL
);

CREATE TABLE app_user (
    id             INTEGER PRIMARY KEY,
    tenant_id      INTEGER NOT NULL REFERENCES tenant (id),
    username       TEXT    NOT NULL COLLATE NOCASE,
    password_hash  TEXT    NOT NULL,
    role           TEXT    NOT NULL CHECK (role IN ('admin', 'dispatcher', 'technician')),
    user_id        BLOB    NOT NULL,
    created_at     INTEGER NOT NULL,
    UNIQUE (tenant_id, username)
);

CREATE TABLE job_dispatch_log (
    tenant_id           INTEGER NOT NULL REFERENCES tenant (id),
    id                  BLOB    NOT NULL,
    jobs_id             BLOB    NOT NULL,
    user_id             BLOB    NOT NULL,
    date_create         INTEGER NOT NULL,
    date_proceeded      INTEGER NOT NULL,
    is_accepted         INTEGER NOT NULL,
    is_rejected         INTEGER NOT NULL,
    rejected_reason     TEXT    NOT NULL,
    sys_logical_delete  INTEGER NOT NULL,
    is_workshop         INTEGER NOT NULL,
    modified_dateutc    INTEGER NOT NULL,
    sequence            INTEGER NOT NULL,
    PRIMARY KEY (tenant_id, id)
) WITHOUT ROWID;

-- Sync reads by stamp; the stamp is unique within a tenant (SPEC §7).
CREATE UNIQUE INDEX job_dispatch_log_modified ON job_dispatch_log (tenant_id, modified_dateutc);
-- Sequences and assignees of a job.
CREATE INDEX job_dispatch_log_job ON job_dispatch_log (tenant_id, jobs_id, sequence);
-- A technician's own rows.
CREATE INDEX job_dispatch_log_user ON job_dispatch_log (tenant_id, user_id, modified_dateutc);
