-- Sync, history and bearer tokens.

-- The highest stamp of any row purged from the tenant: a changes cursor below it may have
-- missed a deletion and must resync.
ALTER TABLE tenant ADD COLUMN purged_through INTEGER NOT NULL DEFAULT 0;

-- A row leaving a technician's scope (reassigned to another user_id) at a stamp: their feed
-- shows it as a removal.
CREATE TABLE scope_exit (
    tenant_id         INTEGER NOT NULL REFERENCES tenant (id),
    user_id           BLOB    NOT NULL,
    id                BLOB    NOT NULL,
    modified_dateutc  INTEGER NOT NULL,
    PRIMARY KEY (tenant_id, user_id, id)
) WITHOUT ROWID;
CREATE INDEX scope_exit_feed ON scope_exit (tenant_id, user_id, modified_dateutc);

-- Every accept, reject, reassignment, delete (and creation and other change) of a row.
CREATE TABLE job_dispatch_log_history (
    seq        INTEGER PRIMARY KEY AUTOINCREMENT,
    tenant_id  INTEGER NOT NULL REFERENCES tenant (id),
    id         BLOB    NOT NULL,
    at         INTEGER NOT NULL,
    client_at  INTEGER NOT NULL,
    actor      TEXT    NOT NULL,
    action     TEXT    NOT NULL,
    changes    TEXT    NOT NULL
);
CREATE INDEX job_dispatch_log_history_row ON job_dispatch_log_history (tenant_id, id, seq);

CREATE TABLE api_token (
    id          INTEGER PRIMARY KEY,
    user_pk     INTEGER NOT NULL REFERENCES app_user (id) ON DELETE CASCADE,
    token_hash  TEXT    NOT NULL UNIQUE,
    created_at  INTEGER NOT NULL
);
CREATE INDEX api_token_user ON api_token (user_pk);
