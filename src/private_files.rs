//! Files that hold secrets (the SQLite database with its password hashes, its `-wal`/`-shm` companions, the key
//! files) are created readable by their owner only, with no moment at which they are readable by others: the
//! file is created with mode 0600 (`O_CREAT|O_EXCL`), never created wider and narrowed afterwards.
//!
//! A file that already exists with group or other permission bits is used as it is (an operator may have chosen
//! a shared group on purpose, and refusing to start would turn an upgrade into an outage), but every start says so
//! at WARN, naming the file and its mode.

use std::path::Path;

/// Creates `path` as an empty file readable and writable by its owner only, unless it exists already. Returns
/// whether it was created.
pub fn create_private(path: &Path) -> std::io::Result<bool> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    match options.open(path) {
        Ok(_) => Ok(true),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(false),
        Err(e) => Err(e),
    }
}

/// The permission bits of `path` when group or others have any access to it (`None` when it is private or does
/// not exist).
pub fn exposed_mode(path: &Path) -> Option<u32> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(path).ok()?.permissions().mode() & 0o777;
        (mode & 0o077 != 0).then_some(mode)
    }
    #[cfg(not(unix))]
    {
        let _ = path;
        None
    }
}

/// Logs a WARN when `path` exists and group or others may access it.
pub fn warn_if_exposed(path: &Path, what: &str) {
    if let Some(mode) = exposed_mode(path) {
        tracing::warn!(
            file = %path.display(),
            mode = %format!("{mode:04o}"),
            "{what} is accessible to group or others (it holds secrets); use `chmod 600` on it"
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[cfg(unix)]
    #[test]
    fn created_private_and_existing_files_are_kept() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("db");
        assert!(create_private(&path).unwrap());
        let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode & 0o077, 0);
        assert_eq!(exposed_mode(&path), None);
        std::fs::write(&path, b"data").unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
        assert!(!create_private(&path).unwrap());
        assert_eq!(std::fs::read(&path).unwrap(), b"data");
        assert_eq!(exposed_mode(&path), Some(0o644));
        assert_eq!(exposed_mode(&dir.path().join("missing")), None);
    }
}
