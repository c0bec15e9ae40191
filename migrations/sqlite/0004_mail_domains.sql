-- Mail domains and email addresses (issue 15). A domain is registered to at most one live organization per
-- (account, region): DeleteOrganization removes its organization's rows, so the unique index needs no state. Every
-- address an entity answers to (its primary address and its aliases) is a row of email_addresses, unique within
-- the organization; its domain must be one of the organization's registered domains (the foreign key also refuses
-- to deregister a domain that still has addresses).

CREATE TABLE mail_domains (
    org_id           TEXT NOT NULL REFERENCES organizations (id),
    account          TEXT NOT NULL,
    region           TEXT NOT NULL,
    domain_key       TEXT NOT NULL,           -- lower-case ASCII (IDNA A-labels)
    is_test_domain   INTEGER NOT NULL,
    ownership_status TEXT NOT NULL,           -- PENDING | VERIFIED
    dkim_status      TEXT NOT NULL,           -- PENDING | VERIFIED
    ownership_token  TEXT NOT NULL,           -- the TXT _amazonses.<domain> value
    dkim_tokens      TEXT NOT NULL,           -- JSON array of the three DKIM selectors
    created_ms       INTEGER NOT NULL,
    PRIMARY KEY (org_id, domain_key)
);
CREATE UNIQUE INDEX mail_domains_domain ON mail_domains (account, region, domain_key);
CREATE INDEX mail_domains_lookup ON mail_domains (domain_key);
CREATE INDEX mail_domains_page ON mail_domains (org_id, created_ms, domain_key);

CREATE TABLE email_addresses (
    org_id      TEXT NOT NULL,
    address_key TEXT NOT NULL,                -- lower-cased address
    address     TEXT NOT NULL,
    domain_key  TEXT NOT NULL,
    entity_id   TEXT NOT NULL REFERENCES users (id),
    is_primary  INTEGER NOT NULL,
    created_ms  INTEGER NOT NULL,
    PRIMARY KEY (org_id, address_key),
    FOREIGN KEY (org_id, domain_key) REFERENCES mail_domains (org_id, domain_key)
);
CREATE INDEX email_addresses_entity ON email_addresses (entity_id, created_ms, address_key);
CREATE INDEX email_addresses_domain ON email_addresses (org_id, domain_key);

-- Existing live organizations: their test domain and the domains given at creation, verified.
INSERT INTO mail_domains (org_id, account, region, domain_key, is_test_domain, ownership_status, dkim_status,
                          ownership_token, dkim_tokens, created_ms)
SELECT id, account, region, lower(default_mail_domain), 1, 'VERIFIED', 'VERIFIED', lower(hex(randomblob(16))),
       json_array(lower(hex(randomblob(16))), lower(hex(randomblob(16))), lower(hex(randomblob(16)))), created_ms
FROM organizations WHERE state <> 'Deleted'
ON CONFLICT DO NOTHING;
INSERT INTO mail_domains (org_id, account, region, domain_key, is_test_domain, ownership_status, dkim_status,
                          ownership_token, dkim_tokens, created_ms)
SELECT o.id, o.account, o.region, lower(d.value), 0, 'VERIFIED', 'VERIFIED', lower(hex(randomblob(16))),
       json_array(lower(hex(randomblob(16))), lower(hex(randomblob(16))), lower(hex(randomblob(16)))), o.created_ms
FROM organizations o, json_each(o.domains) d WHERE o.state <> 'Deleted'
ON CONFLICT DO NOTHING;
-- Existing primary addresses of live users.
INSERT INTO email_addresses (org_id, address_key, address, domain_key, entity_id, is_primary, created_ms)
SELECT u.org_id, u.email_key, u.email, substr(u.email_key, instr(u.email_key, '@') + 1), u.id, 1,
       COALESCE(u.enabled_ms, u.created_ms)
FROM users u JOIN organizations o ON o.id = u.org_id
WHERE u.email_key IS NOT NULL AND u.state <> 'DELETED' AND o.state <> 'Deleted'
  AND EXISTS (SELECT 1 FROM mail_domains d WHERE d.org_id = u.org_id
              AND d.domain_key = substr(u.email_key, instr(u.email_key, '@') + 1))
ON CONFLICT DO NOTHING;
