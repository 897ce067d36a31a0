-- Each job's assigned_user_ids (SPEC §2), kept by the writer whenever a change can alter it, so
-- that reads take a job's text with one key lookup instead of reading every assignee's row.
-- The text is exactly what the code writes: the user_ids of the job's rows that are neither
-- logically deleted nor rejected, ordered by sequence then user_id, each once (at its first
-- sequence), lower-case hyphenated, comma-separated. A job without a current assignee has no
-- entry. No foreign key: the entries are derived from job_dispatch_log, whose rows carry it.
CREATE TABLE job_assignees (
    tenant_id  BIGINT NOT NULL,
    jobs_id    UUID   NOT NULL,
    user_ids   TEXT   NOT NULL,
    PRIMARY KEY (tenant_id, jobs_id)
);

-- The entries of the rows already stored (uuid's text is lower-case hyphenated; uuids compare
-- byte by byte, as the code's Uuid does).
INSERT INTO job_assignees (tenant_id, jobs_id, user_ids)
SELECT tenant_id, jobs_id, string_agg(user_id::text, ',' ORDER BY first_sequence, user_id)
FROM (SELECT tenant_id, jobs_id, user_id, MIN(sequence) AS first_sequence
      FROM job_dispatch_log
      WHERE NOT sys_logical_delete AND NOT is_rejected
      GROUP BY tenant_id, jobs_id, user_id) assignment
GROUP BY tenant_id, jobs_id;
