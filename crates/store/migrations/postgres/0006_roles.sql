-- Roles only one coordinator replica plays at a time (the proof sender of a chain key). A role
-- is held until `expires_ms` and renewed by its holder; another replica takes it over only
-- once it expired. `token` grows at every change of holder: writes made in the role carry it,
-- so a replica that lost the role without noticing cannot write in it any more (fencing).
CREATE TABLE roles (
    name        TEXT   PRIMARY KEY,
    holder      TEXT   NOT NULL,
    token       BIGINT NOT NULL,
    expires_ms  BIGINT NOT NULL
);
