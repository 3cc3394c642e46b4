-- Do-not-disturb and forwards changed from Home Assistant (issue 14): one row
-- per extension and field (`dnd`: on/off; `forward_always`, `forward_busy`,
-- `forward_no_answer`: a number, empty for none). Fields without a row keep
-- the config file's value.
CREATE TABLE phone_settings (
    extension TEXT NOT NULL,
    field TEXT NOT NULL,
    value TEXT NOT NULL,
    updated_at INTEGER NOT NULL,
    PRIMARY KEY (extension, field)
);
