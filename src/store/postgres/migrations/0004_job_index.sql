-- A job's rows by sequence, now carrying what a list page needs to give each row its job's
-- assignees (SPEC §2 assigned_user_ids): the rows of the job in (sequence, user_id) order, with
-- the two flags that say whether a row counts. PostgreSQL derives the assignees from the rows
-- when read, one lookup per row of a page; with this index each lookup is an index-only scan
-- that needs no sort, instead of a visit to every row of the job in the table. It replaces the
-- job index of 0001 (same leading columns), so a Save still maintains the same number of
-- indexes. Building it locks writes to the table for as long as the build takes.
CREATE INDEX job_dispatch_log_job_assignees ON job_dispatch_log (tenant_id, jobs_id, sequence, user_id)
    INCLUDE (sys_logical_delete, is_rejected);
DROP INDEX job_dispatch_log_job;
