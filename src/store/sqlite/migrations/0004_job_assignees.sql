-- Each job's assigned_user_ids (SPEC §2), kept by the writer whenever a change can alter it, so
-- that reads take a job's text with one key lookup instead of reading every assignee's row.
-- The text is exactly what the code writes: the user_ids of the job's rows that are neither
-- logically deleted nor rejected, ordered by sequence then user_id, each once (at its first
-- sequence), lower-case hyphenated, comma-separated. A job without a current assignee has no
-- entry. No foreign key: the entries are derived from job_dispatch_log, whose rows carry it.
CREATE TABLE job_assignees (
    tenant_id  INTEGER NOT NULL,
    jobs_id    BLOB    NOT NULL,
    user_ids   TEXT    NOT NULL,
    PRIMARY KEY (tenant_id, jobs_id)
) WITHOUT ROWID;

-- The entries of the rows already stored. GUIDs are 16-byte blobs: hex() gives the 32 digits
-- in byte order (the order of Uuid's text and of its comparison, as the blobs compare).
INSERT INTO job_assignees (tenant_id, jobs_id, user_ids)
SELECT tenant_id, jobs_id,
       group_concat(
           lower(substr(hex(user_id), 1, 8) || '-' || substr(hex(user_id), 9, 4) || '-'
                 || substr(hex(user_id), 13, 4) || '-' || substr(hex(user_id), 17, 4) || '-'
                 || substr(hex(user_id), 21, 12)),
           ',' ORDER BY first_sequence, user_id)
FROM (SELECT tenant_id, jobs_id, user_id, MIN(sequence) AS first_sequence
      FROM job_dispatch_log
      WHERE sys_logical_delete = 0 AND is_rejected = 0
      GROUP BY tenant_id, jobs_id, user_id)
GROUP BY tenant_id, jobs_id;
