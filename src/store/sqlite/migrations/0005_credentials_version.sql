-- One number that changes whenever stored credentials change: a password set, a user removed,
-- a token revoked (by this service, another instance or the command line alike). A verified
-- login whose number is unchanged is still valid, so the service reads this one row per
-- recheck interval instead of every logged-in user's row.
CREATE TABLE credentials_version (
    id       INTEGER PRIMARY KEY CHECK (id = 1),
    version  INTEGER NOT NULL
);
INSERT INTO credentials_version (id, version) VALUES (1, 0);

CREATE TRIGGER app_user_updated AFTER UPDATE ON app_user
BEGIN
    UPDATE credentials_version SET version = version + 1 WHERE id = 1;
END;
CREATE TRIGGER app_user_deleted AFTER DELETE ON app_user
BEGIN
    UPDATE credentials_version SET version = version + 1 WHERE id = 1;
END;
CREATE TRIGGER api_token_updated AFTER UPDATE ON api_token
BEGIN
    UPDATE credentials_version SET version = version + 1 WHERE id = 1;
END;
CREATE TRIGGER api_token_deleted AFTER DELETE ON api_token
BEGIN
    UPDATE credentials_version SET version = version + 1 WHERE id = 1;
END;
