-- Issue 14: the token rows are kept in page order. A page of ListPersonalAccessTokens read each token's index entry
-- in pats_org_page and then its row by rowid, a second B-tree descent per row (a fifth of a 100-token page's
-- instructions), and the summary, the row's tenth column, behind nine others in the record header. As a WITHOUT ROWID
-- table whose key is the page order (org_id, created_ms, id), a page of an organization is one range of the table
-- itself, the summary its fourth column; pats_org_page is that key and goes. A token found by id or by digest takes
-- the key from its index (id, secret_hash) and the row from the table, two descents as before.
CREATE TABLE personal_access_tokens_in_page_order (
    org_id       TEXT NOT NULL REFERENCES organizations (id),
    created_ms   INTEGER NOT NULL,
    id           TEXT NOT NULL UNIQUE,
    summary      TEXT NOT NULL DEFAULT '',
    user_id      TEXT NOT NULL REFERENCES users (id),
    name         TEXT NOT NULL,
    scopes       TEXT NOT NULL,                     -- JSON array
    last_used_ms INTEGER,
    expires_ms   INTEGER NOT NULL,
    -- HMAC-SHA-256(pepper, secret): the secret itself is never stored.
    secret_hash  BLOB NOT NULL UNIQUE,
    PRIMARY KEY (org_id, created_ms, id)
) WITHOUT ROWID;
INSERT INTO personal_access_tokens_in_page_order
    (org_id, created_ms, id, summary, user_id, name, scopes, last_used_ms, expires_ms, secret_hash)
    SELECT org_id, created_ms, id, summary, user_id, name, scopes, last_used_ms, expires_ms, secret_hash
    FROM personal_access_tokens ORDER BY org_id, created_ms, id;
DROP TABLE personal_access_tokens;
ALTER TABLE personal_access_tokens_in_page_order RENAME TO personal_access_tokens;
CREATE INDEX pats_user_page ON personal_access_tokens (org_id, user_id, created_ms, id);
