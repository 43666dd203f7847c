//! Reading and writing the files the commands take and make: bounded in
//! size, every error naming the file.

use std::io::{Read, Write};
use std::path::Path;

use serde_json::Value;

use crate::Error;

/// The biggest experiment file read. Plan refuses documents over
/// [`experiment::model::MAX_EXPERIMENT_BYTES`] (64 KiB) anyway; this only
/// keeps a wrong file (a log, a binary) from being read whole.
pub const MAX_EXPERIMENT_FILE_BYTES: u64 = 1 << 20;
/// The biggest journal file read. A journal travels in a 256 KB Step
/// Functions state, so this is generous.
pub const MAX_JOURNAL_FILE_BYTES: u64 = 16 << 20;

/// `path` shown in messages; `-` is standard input.
pub fn display(path: &Path) -> String {
    path.display().to_string()
}

/// Reads at most `limit` bytes of `path` (`-`: standard input); more is an
/// error saying so.
pub fn read_capped(path: &Path, limit: u64, what: &'static str) -> Result<Vec<u8>, Error> {
    let name = display(path);
    let read_err = |source| Error::Read {
        path: name.clone(),
        source,
    };
    let mut buf = Vec::new();
    if path == Path::new("-") {
        std::io::stdin()
            .lock()
            .take(limit + 1)
            .read_to_end(&mut buf)
            .map_err(read_err)?;
    } else {
        let file = std::fs::File::open(path).map_err(read_err)?;
        file.take(limit + 1)
            .read_to_end(&mut buf)
            .map_err(read_err)?;
    }
    if buf.len() as u64 > limit {
        return Err(Error::TooLarge {
            path: name,
            limit,
            what,
        });
    }
    Ok(buf)
}

/// The bytes as UTF-8 text, without a byte-order mark (editors on Windows
/// write one); anything else is named as not UTF-8, not as bad JSON.
pub fn utf8<'b>(path: &Path, bytes: &'b [u8]) -> Result<&'b str, Error> {
    let bytes = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes);
    std::str::from_utf8(bytes).map_err(|e| Error::NotUtf8 {
        path: display(path),
        valid_up_to: e.valid_up_to(),
        byte: bytes[e.valid_up_to()],
    })
}

/// Parses JSON text (UTF-8, a byte-order mark skipped).
pub fn parse_json(path: &Path, bytes: &[u8]) -> Result<Value, Error> {
    serde_json::from_str(utf8(path, bytes)?).map_err(|source| Error::Json {
        path: display(path),
        source,
    })
}

/// Reads and parses a JSON file of at most `limit` bytes.
pub fn read_json(path: &Path, limit: u64, what: &'static str) -> Result<Value, Error> {
    let bytes = read_capped(path, limit, what)?;
    parse_json(path, &bytes)
}

/// Writes `text` to `path` (`-`: standard output).
pub fn write(path: &Path, text: &str) -> Result<(), Error> {
    let err = |source| Error::Write {
        path: display(path),
        source,
    };
    if path == Path::new("-") {
        let mut out = std::io::stdout().lock();
        out.write_all(text.as_bytes()).map_err(err)?;
        return out.flush().map_err(err);
    }
    std::fs::write(path, text).map_err(err)
}

/// A journal as a file: pretty JSON and a final newline.
pub fn write_json(path: &Path, value: &Value) -> Result<(), Error> {
    let mut text = serde_json::to_string_pretty(value).map_err(|e| Error::Write {
        path: display(path),
        source: std::io::Error::other(e),
    })?;
    text.push('\n');
    write(path, &text)
}
