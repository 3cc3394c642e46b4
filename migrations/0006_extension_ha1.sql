-- Extensions keep HA1 = H(user:realm:password) per digest algorithm instead
-- of the password (`ha1_realm` is the realm they were made for). Start-up
-- hashes rows that still hold a password and clears it, except for rows whose
-- password the add-on's panel must show (source 'ha_user').
ALTER TABLE extensions ADD COLUMN ha1_realm TEXT;
ALTER TABLE extensions ADD COLUMN ha1_md5 TEXT;
ALTER TABLE extensions ADD COLUMN ha1_sha256 TEXT;
