-- The purge finds the rows it may remove (logically deleted before its cutoff) through this
-- index of deleted rows only, and their history through the history's primary key, instead
-- of scanning the table and the whole history at each start and every --purge-interval.
CREATE INDEX job_dispatch_log_deleted ON job_dispatch_log (tenant_id, modified_dateutc)
    WHERE sys_logical_delete;
