//! What several parts of the host do to files and folders to keep them private and durable.

use std::path::Path;

/// Creates `dir` (and its parents) if needed, and makes it owner-only: the compile cache and the
/// state store may hold what only the user should read.
pub(crate) fn create_private_dir(dir: &Path) -> std::io::Result<()> {
    std::fs::create_dir_all(dir)?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))?;
    }
    Ok(())
}

/// Flushes `dir`'s entries to disk, so that a file created or renamed in it survives a power cut.
pub(crate) fn sync_dir(dir: &Path) -> std::io::Result<()> {
    #[cfg(unix)]
    std::fs::File::open(dir)?.sync_all()?;
    #[cfg(not(unix))]
    let _ = dir;
    Ok(())
}

/// Takes an exclusive lock on the file at `path` (created owner-only if missing, never removed:
/// removing a lock file while another process waits to open it would let two hold "the" lock),
/// or `Ok(None)` when another process holds it. The lock goes when the file is dropped, or when
/// the process dies, however it dies.
/// Its folder must exist.
pub(crate) fn try_lock_file(path: &Path) -> std::io::Result<Option<std::fs::File>> {
    let mut options = std::fs::OpenOptions::new();
    options.create(true).truncate(false).write(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        // Not through a link someone put in its place: trawl opens its own file or none.
        options.mode(0o600).custom_flags(libc::O_NOFOLLOW);
    }
    let file = options.open(path)?;
    match file.try_lock() {
        Ok(()) => Ok(Some(file)),
        Err(std::fs::TryLockError::WouldBlock) => Ok(None),
        Err(std::fs::TryLockError::Error(error)) => Err(error),
    }
}

/// Reads `path` whole if it is a regular file of at most `max_bytes`, following a symbolic link
/// to one. Anything else is refused without reading it: a FIFO (opened without blocking, so that
/// a FIFO with no writer cannot hang trawl), a device such as `/dev/zero` (which never ends), a
/// folder, or a file that grows past the cap while it is read.
pub(crate) fn read_regular_file(path: &Path, max_bytes: u64) -> std::io::Result<Vec<u8>> {
    use std::io::Read;
    let mut options = std::fs::OpenOptions::new();
    options.read(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.custom_flags(libc::O_NONBLOCK);
    }
    let file = options.open(path)?;
    let metadata = file.metadata()?;
    if !metadata.is_file() {
        return Err(std::io::Error::new(
            std::io::ErrorKind::InvalidInput,
            "it is not a regular file",
        ));
    }
    if metadata.len() > max_bytes {
        return Err(too_large(max_bytes));
    }
    let mut bytes = Vec::with_capacity(metadata.len() as usize);
    file.take(max_bytes + 1).read_to_end(&mut bytes)?;
    if bytes.len() as u64 > max_bytes {
        return Err(too_large(max_bytes));
    }
    Ok(bytes)
}

fn too_large(max_bytes: u64) -> std::io::Error {
    std::io::Error::new(
        std::io::ErrorKind::InvalidData,
        format!("it is larger than {} MiB", max_bytes >> 20),
    )
}

/// The first part of `path` (relative to the working folder) that is a symbolic link, if any.
pub(crate) fn symlink_in(path: &Path) -> Option<std::path::PathBuf> {
    let mut walked = std::path::PathBuf::new();
    for component in path.components() {
        walked.push(component);
        if matches!(component, std::path::Component::CurDir) {
            continue;
        }
        if std::fs::symlink_metadata(&walked)
            .is_ok_and(|metadata| metadata.file_type().is_symlink())
        {
            return Some(walked);
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_regular_files_within_the_cap_are_read() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("a.wasm");
        std::fs::write(&file, b"12345").unwrap();
        assert_eq!(read_regular_file(&file, 5).unwrap(), b"12345");
        assert!(
            read_regular_file(&file, 4)
                .unwrap_err()
                .to_string()
                .contains("larger")
        );
        assert!(read_regular_file(dir.path(), 10).is_err());
        #[cfg(unix)]
        {
            let zero = dir.path().join("zero.wasm");
            std::os::unix::fs::symlink("/dev/zero", &zero).unwrap();
            let error = read_regular_file(&zero, 1 << 20).unwrap_err();
            assert!(error.to_string().contains("not a regular file"), "{error}");
            let fifo = dir.path().join("fifo.wasm");
            let name = std::ffi::CString::new(fifo.to_str().unwrap()).unwrap();
            // SAFETY: a valid C string naming a path in a folder this test owns.
            assert_eq!(unsafe { libc::mkfifo(name.as_ptr(), 0o600) }, 0);
            let error = read_regular_file(&fifo, 1 << 20).unwrap_err();
            assert!(error.to_string().contains("not a regular file"), "{error}");
            let link = dir.path().join("link.wasm");
            std::os::unix::fs::symlink(&file, &link).unwrap();
            assert_eq!(read_regular_file(&link, 5).unwrap(), b"12345");
        }
    }

    #[cfg(unix)]
    #[test]
    fn symbolic_links_on_a_path_are_found() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("real")).unwrap();
        std::os::unix::fs::symlink(dir.path().join("real"), dir.path().join("link")).unwrap();
        assert_eq!(symlink_in(&dir.path().join("real/a.csv")), None);
        assert_eq!(
            symlink_in(&dir.path().join("link/a.csv")),
            Some(dir.path().join("link"))
        );
    }
}
