-- Rows are stored in the order of their stamps: the table's key is (tenant_id,
-- modified_dateutc), which is unique in a tenant (every change takes a new stamp), and the
-- row id is a unique index. A feed page and the default list page read consecutive leaves of
-- the table instead of looking each row up by its random id (a 4 KiB page read for every
-- 250-byte row of a pull, bench/README.md). A row that changes moves to the end of its
-- tenant's rows, where its new stamp puts it.
CREATE TABLE job_dispatch_log_by_stamp (
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
    assigned_user_ids   TEXT    NOT NULL DEFAULT '',
    PRIMARY KEY (tenant_id, modified_dateutc)
) WITHOUT ROWID;

INSERT INTO job_dispatch_log_by_stamp
SELECT tenant_id, id, jobs_id, user_id, date_create, date_proceeded, is_accepted, is_rejected,
       rejected_reason, sys_logical_delete, is_workshop, modified_dateutc, sequence,
       assigned_user_ids
FROM job_dispatch_log
ORDER BY tenant_id, modified_dateutc;

DROP TABLE job_dispatch_log;
ALTER TABLE job_dispatch_log_by_stamp RENAME TO job_dispatch_log;

CREATE UNIQUE INDEX job_dispatch_log_id ON job_dispatch_log (tenant_id, id);
CREATE INDEX job_dispatch_log_job ON job_dispatch_log (tenant_id, jobs_id, sequence);
CREATE INDEX job_dispatch_log_user ON job_dispatch_log (tenant_id, user_id, modified_dateutc);
