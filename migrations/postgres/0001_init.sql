-- Initial PostgreSQL schema: the same tables, columns and uniqueness rules as migrations/sqlite/0001_init.sql.
-- Times are milliseconds since the Unix epoch (BIGINT); digests are BYTEA.
--
-- Every text column that is ordered, compared or prefix-matched uses COLLATE "C": SQLite compares text byte by
-- byte, and pages (ordered by (created_ms, id)) and NextTokens must match it exactly whatever the database's
-- default locale is. "C" also lets the page and prefix indexes serve those queries.

CREATE TABLE organizations (
    id                       TEXT COLLATE "C" PRIMARY KEY,
    account                  TEXT COLLATE "C" NOT NULL,
    region                   TEXT COLLATE "C" NOT NULL,
    alias                    TEXT NOT NULL,
    -- Lower-cased alias: uniqueness among live organizations ignores case.
    alias_key                TEXT COLLATE "C" NOT NULL,
    state                    TEXT NOT NULL,
    directory_id             TEXT COLLATE "C" NOT NULL,
    directory_type           TEXT NOT NULL,
    default_mail_domain      TEXT NOT NULL,
    domains                  TEXT NOT NULL,          -- JSON array of lower-case domain names
    kms_key_arn              TEXT,
    interoperability_enabled BOOLEAN NOT NULL,
    created_ms               BIGINT NOT NULL,
    completed_ms             BIGINT
);
CREATE INDEX organizations_page ON organizations (account, region, created_ms, id);
-- D1: an alias is taken while a non-Deleted organization of the same account and region holds it. The index
-- names are what the store maps a unique violation back to (Conflict::Alias, ...): do not rename them.
CREATE UNIQUE INDEX organizations_alias ON organizations (account, region, alias_key) WHERE state <> 'Deleted';
CREATE UNIQUE INDEX organizations_directory ON organizations (account, region, directory_id) WHERE state <> 'Deleted';

CREATE TABLE users (
    id                        TEXT COLLATE "C" PRIMARY KEY,
    org_id                    TEXT COLLATE "C" NOT NULL REFERENCES organizations (id),
    name                      TEXT COLLATE "C" NOT NULL,
    name_key                  TEXT COLLATE "C" NOT NULL,   -- lower-cased name
    email                     TEXT COLLATE "C",
    email_key                 TEXT COLLATE "C",            -- lower-cased email
    state                     TEXT COLLATE "C" NOT NULL,
    role                      TEXT NOT NULL,
    display_name              TEXT COLLATE "C" NOT NULL,
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
    hidden_from_gal           BOOLEAN NOT NULL,
    identity_provider_user_id TEXT COLLATE "C",
    enabled_ms                BIGINT,
    disabled_ms               BIGINT,
    mailbox_provisioned_ms    BIGINT,
    mailbox_deprovisioned_ms  BIGINT,
    created_ms                BIGINT NOT NULL,
    password_hash             TEXT
);
CREATE INDEX users_page ON users (org_id, created_ms, id);
-- Names and emails are unique among the organization's users that are not DELETED.
CREATE UNIQUE INDEX users_name ON users (org_id, name_key) WHERE state <> 'DELETED';
CREATE UNIQUE INDEX users_email ON users (org_id, email_key) WHERE email_key IS NOT NULL AND state <> 'DELETED';

CREATE TABLE identity_provider_configurations (
    org_id              TEXT COLLATE "C" PRIMARY KEY REFERENCES organizations (id),
    authentication_mode TEXT NOT NULL,
    instance_arn        TEXT NOT NULL,
    application_arn     TEXT NOT NULL,
    pat_status          TEXT NOT NULL,
    pat_lifetime_days   BIGINT NOT NULL
);

CREATE TABLE personal_access_tokens (
    id           TEXT COLLATE "C" PRIMARY KEY,
    org_id       TEXT COLLATE "C" NOT NULL REFERENCES organizations (id),
    user_id      TEXT COLLATE "C" NOT NULL REFERENCES users (id),
    name         TEXT NOT NULL,
    scopes       TEXT NOT NULL,                     -- JSON array
    created_ms   BIGINT NOT NULL,
    last_used_ms BIGINT,
    expires_ms   BIGINT NOT NULL,
    -- HMAC-SHA-256(pepper, secret): the secret itself is never stored.
    secret_hash  BYTEA NOT NULL,
    CONSTRAINT personal_access_tokens_secret_hash UNIQUE (secret_hash)
);
CREATE INDEX pats_org_page ON personal_access_tokens (org_id, created_ms, id);
CREATE INDEX pats_user_page ON personal_access_tokens (org_id, user_id, created_ms, id);
-- Deleting a user removes its tokens by user_id alone.
CREATE INDEX pats_user ON personal_access_tokens (user_id);

CREATE TABLE client_tokens (
    account      TEXT COLLATE "C" NOT NULL,
    region       TEXT COLLATE "C" NOT NULL,
    operation    TEXT COLLATE "C" NOT NULL,
    token        TEXT COLLATE "C" NOT NULL,
    request_hash BYTEA NOT NULL,
    result       TEXT NOT NULL,
    created_ms   BIGINT NOT NULL,
    PRIMARY KEY (account, region, operation, token)
);

CREATE TABLE sessions (
    token_hash BYTEA PRIMARY KEY,                   -- HMAC-SHA-256(pepper, "session\0" || token)
    org_id     TEXT COLLATE "C" NOT NULL,
    user_id    TEXT COLLATE "C" NOT NULL,
    expires_ms BIGINT NOT NULL
);
CREATE INDEX sessions_user ON sessions (user_id);
CREATE INDEX sessions_org ON sessions (org_id);
