-- Call history (CDR). Times are unix milliseconds.
CREATE TABLE calls (
    call_id     TEXT PRIMARY KEY NOT NULL,
    caller      TEXT NOT NULL,
    callee      TEXT NOT NULL,
    started_at  INTEGER NOT NULL,
    answered_at INTEGER,
    ended_at    INTEGER,
    disposition TEXT,
    end_reason  TEXT
);

CREATE INDEX calls_started_at ON calls (started_at DESC);
