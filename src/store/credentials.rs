//! Database credentials: keeping them out of every log line and message, and finding the PostgreSQL password the
//! way libpq does.
//!
//! A `--database` URL may carry a password (`postgres://user:PASSWORD@host/db` or `?password=`), so it is never
//! printed as given: everything that logs, prints or puts a database URL into an error goes through
//! [`redact_url`]. Operators who keep the password out of the URL altogether (so it is not in `ps`, shell history
//! or the unit file) have, in libpq's order of precedence: the URL's own password, then
//! `--database-password-file`, then `PGPASSWORD`, then the password file `PGPASSFILE` (default `~/.pgpass`).

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use regex::Regex;

/// What a redacted secret is replaced with.
const MASK: &str = "***";

/// `url` with every password replaced by `***`: the userinfo password of a URL, any query parameter whose name
/// contains "password" (`?password=`, `sslpassword=`), and `password=` in a libpq key-value string. Anything that
/// is not a URL comes back unchanged apart from that, so this is safe to call on whatever a user passed as a URL.
/// When a URL is malformed in a way that makes the end of its userinfo ambiguous, more is masked, never less.
pub fn redact_url(url: &str) -> String {
    let Some(scheme_end) = url.find("://") else {
        return redact_key_values(url);
    };
    let (scheme, rest) = url.split_at(scheme_end + 3);
    let authority_end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let authority = &rest[..authority_end];
    let (head, tail) = if let Some(at) = authority.rfind('@') {
        // Well formed: `user:password@host` in the authority.
        let userinfo = &authority[..at];
        let head = match userinfo.find(':') {
            Some(colon) => format!("{}:{MASK}{}", &userinfo[..colon], &authority[at..]),
            None => authority.to_string(),
        };
        (head, &rest[authority_end..])
    } else if let Some(at) = rest.rfind('@')
        && let Some(colon) = rest[..at].find(':')
        && !rest[..colon].contains(['/', '?', '#'])
    {
        // An unencoded `/`, `?` or `#` inside the password ends the authority early: mask up to the last `@`.
        (format!("{}:{MASK}", &rest[..colon]), &rest[at..])
    } else {
        (authority.to_string(), &rest[authority_end..])
    };
    let tail = match tail.find('?') {
        Some(q) => format!("{}?{}", &tail[..q], redact_query(&tail[q + 1..])),
        None => tail.to_string(),
    };
    format!("{scheme}{head}{tail}")
}

/// A query string (with an optional `#fragment`) with the values of password parameters masked.
fn redact_query(query: &str) -> String {
    let (query, fragment) = match query.find('#') {
        Some(h) => (&query[..h], &query[h..]),
        None => (query, ""),
    };
    let parts: Vec<String> = query
        .split('&')
        .map(|pair| match pair.split_once('=') {
            Some((key, _)) if is_password_key(key) => format!("{key}={MASK}"),
            _ => pair.to_string(),
        })
        .collect();
    format!("{}{fragment}", parts.join("&"))
}

fn is_password_key(key: &str) -> bool {
    percent_encoding::percent_decode_str(key)
        .decode_utf8_lossy()
        .to_ascii_lowercase()
        .contains("password")
}

/// `password=value` (quoted or not) in a libpq key-value string, masked.
fn redact_key_values(text: &str) -> String {
    static RE: OnceLock<Regex> = OnceLock::new();
    let re = RE.get_or_init(|| {
        Regex::new(r"(?i)(\w*password\s*=\s*)('(?:[^'\\]|\\.)*'?|\S*)")
            .expect("static regex compiles")
    });
    re.replace_all(text, format!("${{1}}{MASK}").as_str())
        .into_owned()
}

/// Gives `config` a password when its URL has none: from `password_file`, else `PGPASSWORD`, else the libpq
/// password file. Returns a warning to log when a password file was skipped for its permissions.
pub fn apply_password(
    config: &mut tokio_postgres::Config,
    password_file: Option<&Path>,
) -> Result<Option<String>, String> {
    if config.get_password().is_some() {
        return Ok(None);
    }
    if let Some(path) = password_file {
        let text = zeroize::Zeroizing::new(std::fs::read(path).map_err(|e| {
            format!(
                "cannot read the database password file {}: {e}",
                path.display()
            )
        })?);
        let mut end = text.len();
        if text[..end].ends_with(b"\n") {
            end -= 1;
            if text[..end].ends_with(b"\r") {
                end -= 1;
            }
        }
        config.password(&text[..end]);
        return Ok(None);
    }
    if let Some(p) = std::env::var_os("PGPASSWORD").filter(|p| !p.is_empty()) {
        config.password(p.as_encoded_bytes());
        return Ok(None);
    }
    let Some(path) = pgpass_path() else {
        return Ok(None);
    };
    let Ok(meta) = std::fs::metadata(&path) else {
        return Ok(None);
    };
    if !meta.is_file() {
        return Ok(None);
    }
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = meta.permissions().mode() & 0o777;
        if mode & 0o077 != 0 {
            // libpq's rule: a password file others can read is not used.
            return Ok(Some(format!(
                "password file {} has group or world access (mode {mode:04o}); it is ignored: permissions \
                 should be u=rw (0600) or less",
                path.display()
            )));
        }
    }
    let Ok(text) = std::fs::read_to_string(&path).map(zeroize::Zeroizing::new) else {
        return Ok(None);
    };
    let (host, port, database, user) = match_keys(config);
    if let Some(password) = pgpass_lookup(&text, &host, &port, &database, &user) {
        config.password(password.as_bytes());
    }
    Ok(None)
}

/// `PGPASSFILE`, else `~/.pgpass`.
fn pgpass_path() -> Option<PathBuf> {
    if let Some(p) = std::env::var_os("PGPASSFILE").filter(|p| !p.is_empty()) {
        return Some(PathBuf::from(p));
    }
    std::env::var_os("HOME")
        .filter(|h| !h.is_empty())
        .map(|h| PathBuf::from(h).join(".pgpass"))
}

/// What a password file line is matched against: host (a Unix socket counts as `localhost`, as in libpq), port,
/// database (default: the user name) and user.
fn match_keys(config: &tokio_postgres::Config) -> (String, String, String, String) {
    use tokio_postgres::config::Host;
    let host = match config.get_hosts().first() {
        Some(Host::Tcp(h)) => h.clone(),
        #[cfg(unix)]
        Some(Host::Unix(_)) => "localhost".to_string(),
        None => "localhost".to_string(),
    };
    let port = config
        .get_ports()
        .first()
        .copied()
        .unwrap_or(5432)
        .to_string();
    let user = config.get_user().unwrap_or_default().to_string();
    let database = config.get_dbname().unwrap_or(&user).to_string();
    (host, port, database, user)
}

/// The password of the first line of a libpq password file that matches: `hostname:port:database:username:password`,
/// where each of the first four fields may be `*` (anything), `\:` is a colon and `\\` a backslash inside a field,
/// and blank lines and lines starting with `#` are skipped.
pub fn pgpass_lookup(
    text: &str,
    host: &str,
    port: &str,
    database: &str,
    user: &str,
) -> Option<String> {
    let wanted = [host, port, database, user];
    for line in text.lines() {
        let line = line.strip_suffix('\r').unwrap_or(line);
        if line.trim().is_empty() || line.starts_with('#') {
            continue;
        }
        let fields = split_pgpass_line(line);
        if fields.len() < 5 {
            continue;
        }
        if fields[..4]
            .iter()
            .zip(wanted)
            .all(|(field, want)| field == "*" || field == want)
        {
            return Some(fields[4].clone());
        }
    }
    None
}

/// Splits a password file line at unescaped colons, unescaping `\:` and `\\`. The fifth field runs to the end of
/// the line (a password may contain colons even unescaped).
fn split_pgpass_line(line: &str) -> Vec<String> {
    let mut fields = vec![String::new()];
    let mut chars = line.chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' => match chars.next() {
                Some(next) => fields.last_mut().expect("one field").push(next),
                None => fields.last_mut().expect("one field").push('\\'),
            },
            ':' if fields.len() < 5 => fields.push(String::new()),
            _ => fields.last_mut().expect("one field").push(c),
        }
    }
    fields
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn url_passwords_are_masked() {
        let cases = [
            (
                "postgres://alice:s3cret@db.example:5432/pat",
                "postgres://alice:***@db.example:5432/pat",
            ),
            ("postgres://alice@db/pat", "postgres://alice@db/pat"),
            ("postgresql://db/pat", "postgresql://db/pat"),
            (
                "postgres://alice@db/pat?password=s3cret&sslmode=disable",
                "postgres://alice@db/pat?password=***&sslmode=disable",
            ),
            (
                "postgres://a:s3cret@db/p?sslpassword=s3cret#frag",
                "postgres://a:***@db/p?sslpassword=***#frag",
            ),
            (
                "postgres://alice@db/pat?PassWord=s3cret",
                "postgres://alice@db/pat?PassWord=***",
            ),
            (
                "postgres://alice@db/pat?pass%77ord=s3cret",
                "postgres://alice@db/pat?pass%77ord=***",
            ),
            // An unencoded '/' or '@' inside the password.
            (
                "postgres://alice:s3/cret@db/pat",
                "postgres://alice:***@db/pat",
            ),
            (
                "postgres://alice:s3@cret@db/pat",
                "postgres://alice:***@db/pat",
            ),
            (
                "postgres://alice:s3?cret@db/pat",
                "postgres://alice:***@db/pat",
            ),
            ("sqlite:workmail-pat.db", "sqlite:workmail-pat.db"),
            ("sqlite::memory:", "sqlite::memory:"),
            (
                "host=db user=alice password=s3cret dbname=pat",
                "host=db user=alice password=*** dbname=pat",
            ),
            (
                "host=db password = 's3 cret' dbname=pat",
                "host=db password = *** dbname=pat",
            ),
        ];
        for (given, want) in cases {
            let got = redact_url(given);
            assert_eq!(got, want, "{given}");
            assert!(!got.contains("s3"), "{given} -> {got}");
        }
    }

    #[test]
    fn pgpass_lines_match_like_libpq() {
        let file = "# comment\n\
                    \n\
                    other:5432:*:alice:wrong-host\n\
                    db.example:5433:*:alice:wrong-port\n\
                    db.example:5432:pat:bob:wrong-user\n\
                    db.example:*:pat:alice:pa:ss\\\\word\n\
                    *:*:*:*:fallback\n";
        assert_eq!(
            pgpass_lookup(file, "db.example", "5432", "pat", "alice").as_deref(),
            Some("pa:ss\\word")
        );
        assert_eq!(
            pgpass_lookup(file, "elsewhere", "1", "x", "y").as_deref(),
            Some("fallback")
        );
        let escaped = "h\\:x:5432:d\\\\b:u:secret\r\n";
        assert_eq!(
            pgpass_lookup(escaped, "h:x", "5432", "d\\b", "u").as_deref(),
            Some("secret")
        );
        assert_eq!(pgpass_lookup(escaped, "h", "5432", "d\\b", "u"), None);
        assert_eq!(pgpass_lookup("short:line\n", "short", "line", "", ""), None);
    }

    #[test]
    fn password_sources_follow_libpq_precedence() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("pw");
        std::fs::write(&file, "from-file\n").unwrap();
        // The URL's own password wins over the file.
        let mut c: tokio_postgres::Config = "postgres://u:from-url@h/d".parse().unwrap();
        apply_password(&mut c, Some(&file)).unwrap();
        assert_eq!(c.get_password(), Some(&b"from-url"[..]));
        // The file's, without its trailing newline.
        let mut c: tokio_postgres::Config = "postgres://u@h/d".parse().unwrap();
        apply_password(&mut c, Some(&file)).unwrap();
        assert_eq!(c.get_password(), Some(&b"from-file"[..]));
        // A missing file is an error that names it.
        let mut c: tokio_postgres::Config = "postgres://u@h/d".parse().unwrap();
        let e = apply_password(&mut c, Some(&dir.path().join("missing"))).unwrap_err();
        assert!(e.contains("missing"));
    }
}
