-- Initial schema. Times are milliseconds since the Unix epoch (INTEGER). Every list is paged by
-- (created_ms, id), so each list has an index that starts with its partition columns and ends with those two.

CREATE TABLE organizations (
    id                       TEXT PRIMARY KEY,
    account                  TEXT NOT NULL,
    region                   TEXT NOT NULL,
    alias                    TEXT NOT NULL,
    -- Lower-cased alias: uniqueness among live organizations ignores case.
    alias_key                TEXT NOT NULL,
    state                    TEXT NOT NULL,
    directory_id             TEXT NOT NULL,
    directory_type           TEXT NOT NULL,
    default_mail_domain      TEXT NOT NULL,
    domains                  TEXT NOT NULL,          -- JSON array of lower-case domain names
    kms_key_arn              TEXT,
    interoperability_enabled INTEGER NOT NULL,
    created_ms               INTEGER NOT NULL,
    completed_ms             INTEGER
);
CREATE INDEX organizations_page ON organizations (account, region, created_ms, id);
-- D1: an alias is taken while a non-Deleted organization of the same account and region holds it.
CREATE UNIQUE INDEX organizations_alias ON organizations (account, region, alias_key) WHERE state <> 'Deleted';
CREATE UNIQUE INDEX organizations_directory ON organizations (account, region, directory_id) WHERE state <> 'Deleted';

CREATE TABLE users (
    id                        TEXT PRIMARY KEY,
    org_id                    TEXT NOT NULL REFERENCES organizations (id),
    name                      TEXT NOT NULL,
    name_key                  TEXT NOT NULL,         -- lower-cased name
    email                     TEXT,
    email_key                 TEXT,                  -- lower-cased email
    state                     TEXT NOT NULL,
    role                      TEXT NOT NULL,
    display_name              TEXT NOT NULL,
    first_name                TEXT,
    last_name                 TEXT,
    initials                  TEXT,
    telephone                 TEXT,
    street                    TEXT,
    job_title                 TEXT,
    city                      TEXT,
    company                   TEXT,
    zip_code                  TEXT,
    department                TEXT,
    country                   TEXT,
    office                    TEXT,
    hidden_from_gal           INTEGER NOT NULL,
    identity_provider_user_id TEXT,
    enabled_ms                INTEGER,
    disabled_ms               INTEGER,
    mailbox_provisioned_ms    INTEGER,
    mailbox_deprovisioned_ms  INTEGER,
    created_ms                INTEGER NOT NULL,
    password_hash             TEXT
);
CREATE INDEX users_page ON users (org_id, created_ms, id);
-- Names and emails are unique among the organization's users that are not DELETED.
CREATE UNIQUE INDEX users_name ON users (org_id, name_key) WHERE state <> 'DELETED';
CREATE UNIQUE INDEX users_email ON users (org_id, email_key) WHERE email_key IS NOT NULL AND state <> 'DELETED';

CREATE TABLE identity_provider_configurations (
    org_id              TEXT PRIMARY KEY REFERENCES organizations (id),
    authentication_mode TEXT NOT NULL,
    instance_arn        TEXT NOT NULL,
    application_arn     TEXT NOT NULL,
    pat_status          TEXT NOT NULL,
    pat_lifetime_days   INTEGER NOT NULL
);

CREATE TABLE personal_access_tokens (
    id           TEXT PRIMARY KEY,
    org_id       TEXT NOT NULL REFERENCES organizations (id),
    user_id      TEXT NOT NULL REFERENCES users (id),
    name         TEXT NOT NULL,
    scopes       TEXT NOT NULL,                     -- JSON array
    created_ms   INTEGER NOT NULL,
    last_used_ms INTEGER,
    expires_ms   INTEGER NOT NULL,
    -- HMAC-SHA-256(pepper, secret): the secret itself is never stored.
    secret_hash  BLOB NOT NULL UNIQUE
);
CREATE INDEX pats_org_page ON personal_access_tokens (org_id, created_ms, id);
CREATE INDEX pats_user_page ON personal_access_tokens (org_id, user_id, created_ms, id);

CREATE TABLE client_tokens (
    account      TEXT NOT NULL,
    region       TEXT NOT NULL,
    operation    TEXT NOT NULL,
    token        TEXT NOT NULL,
    request_hash BLOB NOT NULL,
    result       TEXT NOT NULL,
    created_ms   INTEGER NOT NULL,
    PRIMARY KEY (account, region, operation, token)
);

CREATE TABLE sessions (
    token_hash BLOB PRIMARY KEY,                    -- HMAC-SHA-256(pepper, "session\0" || token)
    org_id     TEXT NOT NULL,
    user_id    TEXT NOT NULL,
    expires_ms INTEGER NOT NULL
);
CREATE INDEX sessions_user ON sessions (user_id);
