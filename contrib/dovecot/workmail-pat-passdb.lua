-- workmail-pat passdb for Dovecot (2.3 and 2.4): a mail client logs in with its username and a personal access
-- token instead of a password; this script asks workmail-pat's POST /auth/v1/verify whether the token is valid.
--
-- Settings come from the environment, which Dovecot only passes to its auth processes when listed in
-- `import_environment` (see the 90-workmail-pat.conf snippets next to this file):
--   WORKMAIL_PAT_ORGANIZATION_ID  optional. Without it (the usual setup) users log in with their email address
--                                 (primary or alias) and its verified domain names the organization, so one Dovecot
--                                 serves every organization. Set it only to let one organization's users log in
--                                 with a bare username as well.
--   WORKMAIL_PAT_URL              default http://127.0.0.1:4610 (keep it on loopback or a private network)
--   WORKMAIL_PAT_TIMEOUT_MSECS    default 3000; the whole verification, after which the login fails
--   WORKMAIL_PAT_VERIFIER_KEY_FILE  optional; a file with the secret the server expects (its --verifier-key-file),
--                                 sent as `Authorization: Bearer`. With it the server believes the RemoteIp this
--                                 script reports (otherwise only a server started with --trusted-proxy for this
--                                 host does), so its per-address limits see the mail client, not Dovecot.
--   WORKMAIL_PAT_SERVICE_SCOPES   default "imap=IMAP,pop3=POP3,submission=SMTP,smtp=SMTP": which token scope each
--                                 Dovecot service asks for (`smtp` is Postfix authenticating through Dovecot SASL).
--                                 A service not listed is refused, so a new protocol never gets in unscoped.
--
-- Fail closed: only an HTTP 200 that carries a token id lets a login in. A 401 is a wrong password; anything else
-- (timeout, connection refused, 4xx/5xx, a Lua error) is PASSDB_RESULT_INTERNAL_FAILURE, which Dovecot answers with
-- a temporary failure and never treats as success. The token itself is never logged.

local DEFAULT_URL = "http://127.0.0.1:4610"
local DEFAULT_TIMEOUT_MSECS = 3000
local DEFAULT_SERVICE_SCOPES = "imap=IMAP,pop3=POP3,submission=SMTP,smtp=SMTP"

local verify_url = nil
local organization_id = nil
local service_scopes = nil
local http_client = nil
local verifier_key = nil

local function parse_service_scopes(text)
  local map = {}
  for pair in string.gmatch(text, "[^,%s]+") do
    local service, scope = string.match(pair, "^([^=]+)=(.+)$")
    if service == nil then
      error("WORKMAIL_PAT_SERVICE_SCOPES: expected service=SCOPE, got '" .. pair .. "'")
    end
    map[string.lower(service)] = scope
  end
  return map
end

-- JSON string literal: quotes, backslashes and control characters escaped; other bytes pass through (the server
-- rejects invalid UTF-8 with its uniform 401).
local JSON_ESCAPES = { ['"'] = '\\"', ['\\'] = '\\\\', ['\n'] = '\\n', ['\r'] = '\\r', ['\t'] = '\\t' }
local function json_string(s)
  local escaped = string.gsub(s, '[%c"\\]', function(c)
    return JSON_ESCAPES[c] or string.format("\\u%04x", string.byte(c))
  end)
  return '"' .. escaped .. '"'
end

-- Dovecot 2.3 and 2.4 name the HTTP client settings differently, and 2.4 rejects names it does not know while 2.3
-- ignores them. So try the 2.3 names first (2.4 refuses them with an error), then the 2.4 names: each version ends
-- up with the timeout actually applied.
local function new_http_client(timeout_msecs)
  local ok, client = pcall(dovecot.http.client, {
    request_timeout_msecs = timeout_msecs,
    request_absolute_timeout_msecs = timeout_msecs,
    connect_timeout_msecs = timeout_msecs,
    max_attempts = 1,
    max_redirects = 0,
    user_agent = "workmail-pat-dovecot",
  })
  if ok then
    return client
  end
  local secs = string.format("%d ms", timeout_msecs)
  return dovecot.http.client({
    request_timeout = secs,
    request_absolute_timeout = secs,
    connect_timeout = secs,
    request_max_attempts = 1,
    request_max_redirects = 0,
    user_agent = "workmail-pat-dovecot",
  })
end

-- Called once when the auth process loads the script. An error here stops Dovecot's auth process from starting
-- (a broken setting should not half-work).
function script_init()
  organization_id = os.getenv("WORKMAIL_PAT_ORGANIZATION_ID")
  if organization_id == "" then
    organization_id = nil
  end
  if organization_id ~= nil and not string.match(organization_id, "^m%-[0-9a-f]+$") then
    error("WORKMAIL_PAT_ORGANIZATION_ID is not an organization id (m-...)")
  end
  local url = os.getenv("WORKMAIL_PAT_URL")
  if url == nil or url == "" then
    url = DEFAULT_URL
  end
  verify_url = string.gsub(url, "/+$", "") .. "/auth/v1/verify"
  local timeout = tonumber(os.getenv("WORKMAIL_PAT_TIMEOUT_MSECS") or "") or DEFAULT_TIMEOUT_MSECS
  service_scopes = parse_service_scopes(os.getenv("WORKMAIL_PAT_SERVICE_SCOPES") or DEFAULT_SERVICE_SCOPES)
  http_client = new_http_client(math.floor(timeout))
  local key_file = os.getenv("WORKMAIL_PAT_VERIFIER_KEY_FILE")
  if key_file ~= nil and key_file ~= "" then
    local f, err = io.open(key_file, "r")
    if f == nil then
      error("cannot read WORKMAIL_PAT_VERIFIER_KEY_FILE: " .. tostring(err))
    end
    verifier_key = string.match(f:read("*a") or "", "^%s*(%S+)%s*$")
    f:close()
    if verifier_key == nil then
      error("WORKMAIL_PAT_VERIFIER_KEY_FILE holds no key")
    end
  end
  return 0
end

local function verify(req, pass)
  local service = string.lower(req.service or "")
  local scope = service_scopes[service]
  if scope == nil then
    req:log_warning("workmail-pat: no token scope configured for service '" .. service .. "'; refusing")
    return dovecot.auth.PASSDB_RESULT_USER_DISABLED, ""
  end
  local org_member = ""
  if organization_id ~= nil then
    org_member = '"OrganizationId":' .. json_string(organization_id) .. ","
  end
  local body = "{" .. org_member ..
    '"Username":' .. json_string(req.user or "") ..
    ',"Token":' .. json_string(pass or "") ..
    ',"Scope":' .. json_string(scope) ..
    ',"RemoteIp":' .. json_string(req.remote_ip or "") ..
    "}"
  local request = http_client:request({ url = verify_url, method = "POST" })
  request:add_header("Content-Type", "application/json")
  if verifier_key ~= nil then
    request:add_header("Authorization", "Bearer " .. verifier_key)
  end
  request:set_payload(body)
  local response = request:submit()
  local status = response:status()
  if status == 200 then
    -- A 200 from something that is not workmail-pat (a wrong URL pointing at any web server) must not log anyone
    -- in, so require the answer's shape too.
    if string.find(response:payload() or "", '"PersonalAccessTokenId"', 1, true) then
      return dovecot.auth.PASSDB_RESULT_OK, ""
    end
    req:log_error("workmail-pat: 200 without a PersonalAccessTokenId from " .. verify_url)
    return dovecot.auth.PASSDB_RESULT_INTERNAL_FAILURE, ""
  elseif status == 401 then
    return dovecot.auth.PASSDB_RESULT_PASSWORD_MISMATCH, ""
  end
  -- Dovecot reports its own failures (timeout, connection refused) as statuses >= 9000.
  req:log_error("workmail-pat: verification failed with status " .. tostring(status) .. " " ..
    tostring(response:reason()) .. " from " .. verify_url)
  return dovecot.auth.PASSDB_RESULT_INTERNAL_FAILURE, ""
end

function auth_password_verify(req, pass)
  local ok, result, fields = pcall(verify, req, pass)
  if not ok then
    req:log_error("workmail-pat: " .. tostring(result))
    return dovecot.auth.PASSDB_RESULT_INTERNAL_FAILURE, ""
  end
  return result, fields
end

-- Dovecot 2.4 asks for the cache key here (2.3 takes cache_key= from the passdb args instead). The service is part
-- of it so that, if an administrator turns the auth cache on, a token verified for IMAP is never accepted from the
-- cache for SMTP. With the recommended auth_cache_size = 0 nothing is cached at all.
function auth_passdb_get_cache_key()
  return "%{protocol}:%{user}"
end

-- Only plaintext logins (PLAIN/LOGIN) can be checked against the server; a lookup for CRAM-MD5 and the like has no
-- password to return, so it is an internal failure, never a success.
function auth_passdb_lookup(req)
  req:log_warning("workmail-pat: only plaintext mechanisms (PLAIN, LOGIN) can verify personal access tokens")
  return dovecot.auth.PASSDB_RESULT_INTERNAL_FAILURE, ""
end
