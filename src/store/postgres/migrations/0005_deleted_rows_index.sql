-- The purge finds the rows it may remove (logically deleted before its cutoff) through this
-- index of deleted rows only, in stamp order (a purge goes oldest first, a step at a time), and their history through the history's primary key, instead
-- of scanning the table and the whole history at each start and every --purge-interval.
CREATE INDEX job_dispatch_log_deleted ON job_dispatch_log (modified_dateutc, tenant_id)
    WHERE sys_logical_delete;
