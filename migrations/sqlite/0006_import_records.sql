-- Issue 16: what `workmail-pat import` last wrote of each entity it imported (a fingerprint of the content it
-- compares), so that a later run tells a change made at the source (the target still holds what was imported: the
-- change is applied) from an edit made in this store since (a conflict, never overwritten). Bookkeeping of this
-- store only: not part of the API, nor of `dump`. `kind` is the entity (Organization, User, MailDomain,
-- Configuration); `entity_id` its id (a mail domain: its lower-cased name; a configuration: the organization id).
CREATE TABLE import_records (
    kind        TEXT    NOT NULL,
    org_id      TEXT    NOT NULL,
    entity_id   TEXT    NOT NULL,
    fingerprint TEXT    NOT NULL,
    imported_ms INTEGER NOT NULL,
    PRIMARY KEY (org_id, kind, entity_id)
);
