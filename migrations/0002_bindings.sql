-- Registrar contact bindings, kept so registrations survive a restart.
CREATE TABLE bindings (
    extension     TEXT NOT NULL REFERENCES extensions (extension) ON DELETE CASCADE,
    contact_uri   TEXT NOT NULL,
    source_addr   TEXT NOT NULL,
    transport     TEXT NOT NULL,
    expires_at    INTEGER NOT NULL,
    call_id       TEXT NOT NULL,
    cseq          INTEGER NOT NULL,
    user_agent    TEXT,
    instance_id   TEXT,
    reg_id        INTEGER,
    registered_at INTEGER NOT NULL,
    PRIMARY KEY (extension, contact_uri)
);

-- Load and sweep both filter on expiry.
CREATE INDEX bindings_expires_at ON bindings (expires_at);
