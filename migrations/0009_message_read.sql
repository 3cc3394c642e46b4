-- Message-waiting (MWI): a message is new until it is marked read.
-- `callee` is the number the caller dialled: an extension, or a group (whose
-- members' lamps it lights). Unix milliseconds; NULL: not read yet.
ALTER TABLE messages ADD COLUMN read_at INTEGER;

CREATE INDEX messages_callee ON messages (callee, read_at);
