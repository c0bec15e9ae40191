-- Mail domains and email addresses (issue 15): the same tables and rules as migrations/sqlite/0004_mail_domains.sql.
-- The index names are what the store maps a violation back to (Conflict::MailDomain, Conflict::Email): do not
-- rename them.

CREATE TABLE mail_domains (
    org_id           TEXT COLLATE "C" NOT NULL REFERENCES organizations (id),
    account          TEXT COLLATE "C" NOT NULL,
    region           TEXT COLLATE "C" NOT NULL,
    domain_key       TEXT COLLATE "C" NOT NULL,
    is_test_domain   BOOLEAN NOT NULL,
    ownership_status TEXT NOT NULL,
    dkim_status      TEXT NOT NULL,
    ownership_token  TEXT NOT NULL,
    dkim_tokens      TEXT NOT NULL,
    created_ms       BIGINT NOT NULL,
    PRIMARY KEY (org_id, domain_key)
);
CREATE UNIQUE INDEX mail_domains_domain ON mail_domains (account, region, domain_key);
CREATE INDEX mail_domains_lookup ON mail_domains (domain_key);
CREATE INDEX mail_domains_page ON mail_domains (org_id, created_ms, domain_key);

CREATE TABLE email_addresses (
    org_id      TEXT COLLATE "C" NOT NULL,
    address_key TEXT COLLATE "C" NOT NULL,
    address     TEXT NOT NULL,
    domain_key  TEXT COLLATE "C" NOT NULL,
    entity_id   TEXT COLLATE "C" NOT NULL REFERENCES users (id),
    is_primary  BOOLEAN NOT NULL,
    created_ms  BIGINT NOT NULL,
    PRIMARY KEY (org_id, address_key),
    FOREIGN KEY (org_id, domain_key) REFERENCES mail_domains (org_id, domain_key)
);
CREATE INDEX email_addresses_entity ON email_addresses (entity_id, created_ms, address_key);
CREATE INDEX email_addresses_domain ON email_addresses (org_id, domain_key);

INSERT INTO mail_domains (org_id, account, region, domain_key, is_test_domain, ownership_status, dkim_status,
                          ownership_token, dkim_tokens, created_ms)
SELECT id, account, region, lower(default_mail_domain), TRUE, 'VERIFIED', 'VERIFIED', md5(random()::text || id),
       json_build_array(md5(random()::text), md5(random()::text), md5(random()::text))::text, created_ms
FROM organizations WHERE state <> 'Deleted'
ON CONFLICT DO NOTHING;
INSERT INTO mail_domains (org_id, account, region, domain_key, is_test_domain, ownership_status, dkim_status,
                          ownership_token, dkim_tokens, created_ms)
SELECT o.id, o.account, o.region, lower(d.value), FALSE, 'VERIFIED', 'VERIFIED', md5(random()::text || o.id),
       json_build_array(md5(random()::text), md5(random()::text), md5(random()::text))::text, o.created_ms
FROM organizations o, json_array_elements_text(o.domains::json) AS d(value) WHERE o.state <> 'Deleted'
ON CONFLICT DO NOTHING;
INSERT INTO email_addresses (org_id, address_key, address, domain_key, entity_id, is_primary, created_ms)
SELECT u.org_id, u.email_key, u.email, split_part(u.email_key, '@', 2), u.id, TRUE,
       COALESCE(u.enabled_ms, u.created_ms)
FROM users u JOIN organizations o ON o.id = u.org_id
WHERE u.email_key IS NOT NULL AND u.state <> 'DELETED' AND o.state <> 'Deleted'
  AND EXISTS (SELECT 1 FROM mail_domains d WHERE d.org_id = u.org_id AND d.domain_key = split_part(u.email_key, '@', 2))
ON CONFLICT DO NOTHING;
