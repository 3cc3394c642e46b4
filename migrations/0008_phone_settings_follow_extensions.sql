-- DND and forwards set from Home Assistant go with their extension: a new
-- extension with the same number starts from its config file values.
DELETE FROM phone_settings WHERE extension NOT IN (SELECT extension FROM extensions);
CREATE TRIGGER phone_settings_follow_extension AFTER DELETE ON extensions
BEGIN
    DELETE FROM phone_settings WHERE extension = OLD.extension;
END;
