-- User lookups by name or email must also find DELETED users (DescribeUser answers them), and the partial unique
-- indexes only cover live users. Without these, resolving a username scanned the organization's users (measured:
-- ListPersonalAccessTokens with a UserId ran at 3,000 requests/s against 8,300 for the whole organization).
CREATE INDEX users_name_lookup ON users (org_id, name_key);
CREATE INDEX users_email_lookup ON users (org_id, email_key);
