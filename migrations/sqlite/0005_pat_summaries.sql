-- Issue 14: each token keeps its `PersonalAccessTokenSummary` exactly as the API sends it (JSON object text), written
-- with every write of the row (creation, DateLastUsed), so a page of ListPersonalAccessTokens is one range scan of
-- pats_org_page / pats_user_page whose stored bytes are copied into the answer. Rows written before this migration
-- get theirs when the store is opened (the program fills every empty summary right after migrating).
ALTER TABLE personal_access_tokens ADD COLUMN summary TEXT NOT NULL DEFAULT '';
