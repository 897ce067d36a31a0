-- One number that changes whenever stored credentials change: a password set, a user removed,
-- a token revoked (by any instance or the command line alike). A verified login whose number
-- is unchanged is still valid, so each instance reads this one row per recheck interval
-- instead of every logged-in user's row.
CREATE TABLE credentials_version (
    id       SMALLINT PRIMARY KEY CHECK (id = 1),
    version  BIGINT NOT NULL
);
INSERT INTO credentials_version (id, version) VALUES (1, 0);

CREATE FUNCTION credentials_changed() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    UPDATE credentials_version SET version = version + 1 WHERE id = 1;
    RETURN NULL;
END
$$;

CREATE TRIGGER app_user_changed AFTER UPDATE OR DELETE ON app_user
    FOR EACH STATEMENT EXECUTE FUNCTION credentials_changed();
CREATE TRIGGER api_token_changed AFTER UPDATE OR DELETE ON api_token
    FOR EACH STATEMENT EXECUTE FUNCTION credentials_changed();
