-- Each row carries its job's assigned_user_ids (SPEC §2), kept by the writer whenever a change
-- can alter it, so that a read takes a row's text with the row itself instead of reading every
-- assignee's row of its job. Every row of a job holds the same text: the user_ids of the job's
-- rows that are neither logically deleted nor rejected, ordered by sequence then user_id, each
-- once (at its first sequence), lower-case hyphenated, comma-separated; '' when there is none.
-- It is not a field of the resource: clients never write it.
ALTER TABLE job_dispatch_log ADD COLUMN assigned_user_ids TEXT NOT NULL DEFAULT '';

-- The texts of the rows already stored. GUIDs are 16-byte blobs: hex() gives the 32 digits in
-- byte order (the order of Uuid's text and of its comparison, as the blobs compare).
CREATE TEMP TABLE job_text AS
SELECT tenant_id, jobs_id,
       group_concat(
           lower(substr(hex(user_id), 1, 8) || '-' || substr(hex(user_id), 9, 4) || '-'
                 || substr(hex(user_id), 13, 4) || '-' || substr(hex(user_id), 17, 4) || '-'
                 || substr(hex(user_id), 21, 12)),
           ',' ORDER BY first_sequence, user_id) AS user_ids
FROM (SELECT tenant_id, jobs_id, user_id, MIN(sequence) AS first_sequence
      FROM job_dispatch_log
      WHERE sys_logical_delete = 0 AND is_rejected = 0
      GROUP BY tenant_id, jobs_id, user_id)
GROUP BY tenant_id, jobs_id;

UPDATE job_dispatch_log SET assigned_user_ids = t.user_ids
FROM job_text t
WHERE t.tenant_id = job_dispatch_log.tenant_id AND t.jobs_id = job_dispatch_log.jobs_id;

DROP TABLE job_text;
