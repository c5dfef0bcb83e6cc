//! Tokens kept off the command line: read from a file (`run --token-file`,
//! `ingest --auth-token-file`) with the same rules a token on the command line or in the
//! environment meets (not empty, at most the 512 bytes a HELLO carries).
//!
//! It never prints a token, not even in an error.

use anyhow::{Context, anyhow, bail};
use std::io::Read;
use std::path::Path;

/// Reads the token in `path`: the file's text, one trailing line break removed. An empty token,
/// one longer than a HELLO can carry, or a file that is not a regular file is refused; a file
/// other users can read is accepted with a warning.
pub fn read_token_file(path: &Path, what: &str) -> anyhow::Result<String> {
    let meta = std::fs::metadata(path)
        .with_context(|| format!("cannot read the {what} file {}", path.display()))?;
    if !meta.is_file() {
        bail!("the {what} file {} is not a regular file", path.display());
    }
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        if meta.permissions().mode() & 0o004 != 0 {
            eprintln!(
                "warning: the {what} file {} is readable by every user (chmod 600 it)",
                path.display()
            );
        }
    }
    let mut text = Vec::new();
    std::fs::File::open(path)
        .and_then(|f| {
            f.take(wire::MAX_TOKEN_LEN as u64 + 3)
                .read_to_end(&mut text)
        })
        .with_context(|| format!("cannot read the {what} file {}", path.display()))?;
    let text = text
        .strip_suffix(b"\n")
        .map(|t| t.strip_suffix(b"\r").unwrap_or(t))
        .unwrap_or(&text);
    check(text).map_err(|e| anyhow!("the {what} file {}: {e}", path.display()))?;
    String::from_utf8(text.to_vec())
        .map_err(|_| anyhow!("the {what} file {} is not UTF-8 text", path.display()))
}

/// The rules every token meets, wherever it comes from.
pub fn check(token: &[u8]) -> Result<(), String> {
    if token.iter().all(u8::is_ascii_whitespace) {
        return Err(
            "an empty token would let any client in; give a token, or leave the flag out".into(),
        );
    }
    if token.len() > wire::MAX_TOKEN_LEN {
        return Err(format!(
            "the token is longer than the {} bytes a HELLO frame carries",
            wire::MAX_TOKEN_LEN
        ));
    }
    if token.contains(&b'\n') {
        return Err("the token spans several lines; put it alone on the first line".into());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_token_file_is_read_whole_and_checked() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("t");
        std::fs::write(&p, "s3cret\r\n").unwrap();
        assert_eq!(read_token_file(&p, "token").unwrap(), "s3cret");
        std::fs::write(&p, "s3cret").unwrap();
        assert_eq!(read_token_file(&p, "token").unwrap(), "s3cret");
        for bad in ["", "\n", "  \n", "a\nb\n"] {
            std::fs::write(&p, bad).unwrap();
            let e = read_token_file(&p, "token").unwrap_err().to_string();
            assert!(e.contains(&p.display().to_string()), "{e}");
            assert!(!e.contains("a\nb"), "the token is never printed: {e}");
        }
        std::fs::write(&p, "x".repeat(600)).unwrap();
        let e = read_token_file(&p, "token").unwrap_err().to_string();
        assert!(e.contains("512 bytes"), "{e}");
        let e = read_token_file(dir.path(), "token")
            .unwrap_err()
            .to_string();
        assert!(e.contains("not a regular file"), "{e}");
        let e = read_token_file(&dir.path().join("missing"), "token")
            .unwrap_err()
            .to_string();
        assert!(e.contains("cannot read the token file"), "{e}");
    }
}
