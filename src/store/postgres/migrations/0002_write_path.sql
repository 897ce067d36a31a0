-- The write path of a Save, made lighter for the one writer connection each instance has.
--
-- Rows, history and scope exits no longer carry a foreign key to tenant: each inserted row ran
-- a check query on the tenant table (about a tenth of the server's work on a Save). The writer
-- locks the tenant's row (SELECT … FOR UPDATE) in the same transaction before it writes any of
-- them, and no tenant is ever deleted, so every row still names an existing tenant.
ALTER TABLE job_dispatch_log DROP CONSTRAINT IF EXISTS job_dispatch_log_tenant_id_fkey;
ALTER TABLE job_dispatch_log_history DROP CONSTRAINT IF EXISTS job_dispatch_log_history_tenant_id_fkey;
ALTER TABLE scope_exit DROP CONSTRAINT IF EXISTS scope_exit_tenant_id_fkey;

-- History: one index instead of two. Entries are read by row, in order (tenant_id, id, seq),
-- and seq alone is unique, so that index serves as the primary key.
ALTER TABLE job_dispatch_log_history DROP CONSTRAINT job_dispatch_log_history_pkey;
DROP INDEX job_dispatch_log_history_row;
ALTER TABLE job_dispatch_log_history ADD PRIMARY KEY (tenant_id, id, seq);
