-- Messages the AI agent took from callers. Times are unix milliseconds.
CREATE TABLE messages (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    call_id     TEXT NOT NULL,
    caller      TEXT NOT NULL,
    callee      TEXT NOT NULL,
    transcript  TEXT NOT NULL,
    created_at  INTEGER NOT NULL
);

CREATE INDEX messages_created_at ON messages (created_at DESC);
