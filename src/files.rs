//! Reading the files a user names (inputs, `--check` goldens, expectation and state files):
//! regular files only, and never more than a stated number of bytes.
//!
//! A FIFO would block the reader forever and a link to `/dev/zero` would fill the memory, so
//! the kind of file is checked before it is opened and the read stops one byte past the
//! limit. Links to regular files are followed (a user's own links are common); links to
//! folders are not followed by [`crate::offline::load_inputs`] (a repository may hold a link
//! to itself).

use std::io::Read;
use std::path::Path;

/// The most one input file (YAML of many objects, a golden) may hold: a `kubectl get -o yaml`
/// of 6,000 FRRConfigurations is about 20 MB.
pub const MAX_INPUT_FILE: u64 = 64 << 20;

/// The most all the input files of one command may hold together.
pub const MAX_INPUT_TOTAL: u64 = 256 << 20;

/// The most a small file the program keeps for itself (a state file) may hold.
pub const MAX_STATE_FILE: u64 = 16 << 20;

/// The text of `path` when it is a regular file (after links) of at most `limit` bytes;
/// otherwise an error that says why (`InvalidInput` for the kind of file, `FileTooLarge`), or
/// the error of the read.
pub fn read_regular(path: &Path, limit: u64) -> std::io::Result<String> {
    let meta = std::fs::metadata(path)?;
    if !meta.is_file() {
        return Err(std::io::Error::new(std::io::ErrorKind::InvalidInput, format!("not a regular file ({})", kind(&meta))));
    }
    let file = std::fs::File::open(path)?;
    // the file may have been swapped since the check: test what was opened
    let opened = file.metadata()?;
    if !opened.is_file() {
        return Err(std::io::Error::new(std::io::ErrorKind::InvalidInput, format!("not a regular file ({})", kind(&opened))));
    }
    read_limited(file, limit)
}

/// Up to `limit` bytes of `reader` as UTF-8; an error when there is more.
pub fn read_limited(reader: impl Read, limit: u64) -> std::io::Result<String> {
    let mut bytes = Vec::new();
    reader.take(limit.saturating_add(1)).read_to_end(&mut bytes)?;
    if bytes.len() as u64 > limit {
        return Err(std::io::Error::new(std::io::ErrorKind::FileTooLarge, format!("larger than {limit} bytes")));
    }
    String::from_utf8(bytes).map_err(|_| std::io::Error::new(std::io::ErrorKind::InvalidData, "not UTF-8 text"))
}

fn kind(meta: &std::fs::Metadata) -> &'static str {
    use std::os::unix::fs::FileTypeExt;
    let t = meta.file_type();
    if t.is_dir() {
        "a folder"
    } else if t.is_fifo() {
        "a FIFO"
    } else if t.is_char_device() {
        "a character device"
    } else if t.is_block_device() {
        "a block device"
    } else if t.is_socket() {
        "a socket"
    } else {
        "not a file"
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_regular_files_within_the_limit_are_read() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("a.yaml");
        std::fs::write(&f, "kind: Node\n").unwrap();
        assert_eq!(read_regular(&f, 100).unwrap(), "kind: Node\n");
        let e = read_regular(&f, 4).unwrap_err();
        assert!(e.to_string().contains("larger than 4 bytes"), "{e}");
        let e = read_regular(dir.path(), 100).unwrap_err();
        assert!(e.to_string().contains("a folder"), "{e}");
        let e = read_regular(Path::new("/dev/zero"), 100).unwrap_err();
        assert!(e.to_string().contains("character device"), "{e}");
        // a FIFO: refused before it is opened (opening it would block without a writer)
        let fifo = dir.path().join("fifo.yaml");
        assert!(std::process::Command::new("mkfifo").arg(&fifo).status().unwrap().success());
        let e = read_regular(&fifo, 100).unwrap_err();
        assert!(e.to_string().contains("a FIFO"), "{e}");
        // a link to a regular file is followed
        let link = dir.path().join("link.yaml");
        std::os::unix::fs::symlink(&f, &link).unwrap();
        assert_eq!(read_regular(&link, 100).unwrap(), "kind: Node\n");
    }
}
