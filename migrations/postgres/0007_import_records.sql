-- Issue 16, the same table as migrations/sqlite/0006_import_records.sql: what `workmail-pat import` last wrote of
-- each entity it imported (a fingerprint of the content it compares), so that a later run tells a change made at
-- the source (the target still holds what was imported: the change is applied) from an edit made in this store
-- since (a conflict, never overwritten). Bookkeeping of this store only: not part of the API, nor of `dump`.
CREATE TABLE import_records (
    kind        TEXT COLLATE "C" NOT NULL,
    org_id      TEXT COLLATE "C" NOT NULL,
    entity_id   TEXT COLLATE "C" NOT NULL,
    fingerprint TEXT COLLATE "C" NOT NULL,
    imported_ms BIGINT  NOT NULL,
    PRIMARY KEY (org_id, kind, entity_id)
);
