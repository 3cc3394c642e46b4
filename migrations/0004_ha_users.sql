-- Add-on mode: the Home Assistant user that owns each automatic extension
-- (extensions.source = 'ha_user'). `username` is the login name, the
-- extension's `name` the display name. The row goes with its extension.
CREATE TABLE addon_ha_users (
    user_id   TEXT PRIMARY KEY NOT NULL,
    extension TEXT NOT NULL UNIQUE REFERENCES extensions (extension) ON DELETE CASCADE,
    username  TEXT
);
