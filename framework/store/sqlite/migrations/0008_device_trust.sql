-- A remembered device also names the provider the user answered, and keeps
-- that provider's own trust token for the device (Duo's
-- trusted_device_token), sealed like enrollment state; NULL when the
-- provider gave none. Devices remembered before this have neither.
ALTER TABLE remembered_devices ADD COLUMN provider TEXT NOT NULL DEFAULT '';
ALTER TABLE remembered_devices ADD COLUMN trust_token BLOB;
