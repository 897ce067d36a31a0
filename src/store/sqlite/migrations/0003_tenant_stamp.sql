-- Each tenant's last modified_dateutc stamp: the writer locks and raises it in commit order.
ALTER TABLE tenant ADD COLUMN last_stamp INTEGER NOT NULL DEFAULT 0;
UPDATE tenant SET last_stamp = COALESCE(
    (SELECT MAX(modified_dateutc) FROM job_dispatch_log WHERE tenant_id = tenant.id), 0);
