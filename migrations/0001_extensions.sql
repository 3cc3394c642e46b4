-- Extensions that may register and be called. `source` says who owns the row:
-- 'config' rows are rewritten from the YAML on every start, others are not.
CREATE TABLE extensions (
    extension TEXT PRIMARY KEY NOT NULL,
    password  TEXT NOT NULL,
    name      TEXT,
    source    TEXT NOT NULL DEFAULT 'config'
);
