-- The panel's history filters: by number (caller or callee) and by how a
-- call ended, newest first; each index ends in started_at so a filtered page
-- is read in order without a sort.
CREATE INDEX calls_caller ON calls (caller, started_at DESC);
CREATE INDEX calls_callee ON calls (callee, started_at DESC);
CREATE INDEX calls_disposition ON calls (disposition, started_at DESC);
