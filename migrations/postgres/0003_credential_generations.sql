-- Sessions are bound to a credential generation (issue 12, defect 2). Every change that must end a user's sessions
-- (password reset, deregistration, deletion, re-registration) moves `users.credential_generation`; a session is
-- live only while its own generation equals its user's, so a sign-in that raced with such a change can never
-- leave a working session behind. `authenticated_ms` is when the password was last entered for the session (the
-- web page asks for it again before sensitive actions on an older session).
ALTER TABLE users ADD COLUMN credential_generation BIGINT NOT NULL DEFAULT 0;
ALTER TABLE sessions ADD COLUMN credential_generation BIGINT NOT NULL DEFAULT 0;
ALTER TABLE sessions ADD COLUMN authenticated_ms BIGINT NOT NULL DEFAULT 0;
