-- The purge finds the rows it may remove (logically deleted before its cutoff) through this
-- index of deleted rows only, in stamp order (a purge goes oldest first, a step at a time), and their history through the history's index by row. It read
-- every row older than the cutoff and every history entry before: 3.5 s at a million rows, at
-- each start and every --purge-interval, during which no Save could commit.
CREATE INDEX job_dispatch_log_deleted ON job_dispatch_log (modified_dateutc, tenant_id)
    WHERE sys_logical_delete = 1;
