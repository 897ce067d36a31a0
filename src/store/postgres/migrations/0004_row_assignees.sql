-- Each row carries its job's assigned_user_ids (SPEC §2), as on SQLite (its migration 0004):
-- kept by the writer whenever a change can alter it, so that a list page or a feed page reads
-- each row's text with the row instead of looking up every row of its job. Every row of a job
-- holds the same text: the user_ids of the job's rows that are neither logically deleted nor
-- rejected, ordered by sequence then user_id, each once (at its first sequence), lower-case
-- hyphenated, comma-separated; '' when there is none. It is not a field of the resource:
-- clients never write it.
--
-- Filling it rewrites every row once: on a large table this takes a while, with writes to the
-- table locked.
ALTER TABLE job_dispatch_log ADD COLUMN assigned_user_ids TEXT NOT NULL DEFAULT '';

UPDATE job_dispatch_log j SET assigned_user_ids = t.user_ids
FROM (SELECT tenant_id, jobs_id,
             string_agg(user_id::text, ',' ORDER BY first_sequence, user_id) AS user_ids
      FROM (SELECT tenant_id, jobs_id, user_id, MIN(sequence) AS first_sequence
            FROM job_dispatch_log
            WHERE NOT sys_logical_delete AND NOT is_rejected
            GROUP BY tenant_id, jobs_id, user_id) a
      GROUP BY tenant_id, jobs_id) t
WHERE t.tenant_id = j.tenant_id AND t.jobs_id = j.jobs_id;
