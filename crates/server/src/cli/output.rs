//! How client commands print their results: each result is one `Serialize` struct, printed
//! as one JSON document with `--json` and as text otherwise, so both forms say the same.
//!
//! Keys and values are bytes. In JSON a field holding them is a string when the bytes are
//! UTF-8, and otherwise is named with `_base64` appended and holds their base64 (standard
//! alphabet, padded): `{"key": "user/1"}` or `{"key_base64": "/w=="}`, never both. In text a
//! record is always one line: [`escape`] writes tabs, newlines, backslashes, other control
//! characters and bytes that are not UTF-8 as Rust-style escapes.

use std::fmt::Write as _;
use std::io::{self, Write};

use anyhow::Result;
use base64::Engine as _;
use serde::ser::SerializeMap;
use serde::{Serialize, Serializer};

/// Whether a command prints text or JSON.
#[derive(clap::Args, Clone, Copy, Debug)]
pub struct Format {
    /// Print the result as one JSON document (keys and values that are not UTF-8 as
    /// FIELD_base64).
    #[arg(long)]
    pub json: bool,
}

/// A command's result.
pub trait Report: Serialize {
    /// The text form, written to stdout.
    fn text(&self, out: &mut dyn Write) -> io::Result<()>;
}

impl Format {
    /// Prints `r` to stdout in the chosen form.
    pub fn print(&self, r: &impl Report) -> Result<()> {
        let mut out = io::stdout().lock();
        if self.json {
            serde_json::to_writer_pretty(&mut out, r)?;
            writeln!(out)?;
        } else {
            r.text(&mut out)?;
        }
        out.flush()?;
        Ok(())
    }

    /// Prints the result of a request the cluster already carried out: a failure to print it
    /// (a closed pipe, a full disk) is reported on stderr but does not make the command fail,
    /// so a script never retries a write that was applied.
    pub fn print_done(&self, r: &impl Report, done: super::Exit) -> super::Exit {
        if let Err(e) = self.print(r) {
            eprintln!("brisk: the request succeeded, but its result could not be printed: {e:#}");
        }
        done
    }
}

/// Bytes as a field of a JSON object; used with `#[serde(flatten)]` (see the module docs).
#[derive(Debug)]
pub struct Bytes {
    name: &'static str,
    bytes: Vec<u8>,
}

impl Bytes {
    pub fn new(name: &'static str, bytes: Vec<u8>) -> Bytes {
        Bytes { name, bytes }
    }

    pub fn as_slice(&self) -> &[u8] {
        &self.bytes
    }
}

impl Serialize for Bytes {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut map = s.serialize_map(Some(1))?;
        match std::str::from_utf8(&self.bytes) {
            Ok(text) => map.serialize_entry(self.name, text)?,
            Err(_) => map.serialize_entry(
                &format!("{}_base64", self.name),
                &base64::engine::general_purpose::STANDARD.encode(&self.bytes),
            )?,
        }
        map.end()
    }
}

/// `bytes` as one line of text: UTF-8 as it is, except `\t`, `\n`, `\r` and `\\` (written as
/// those two-character escapes), other ASCII control characters and bytes that are not UTF-8
/// (written as `\xNN`), and the remaining control characters and line separators (written
/// as `\u{NNNN}`). Distinct inputs give distinct outputs.
pub fn escape(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len());
    for chunk in bytes.utf8_chunks() {
        for c in chunk.valid().chars() {
            match c {
                '\t' => out.push_str("\\t"),
                '\n' => out.push_str("\\n"),
                '\r' => out.push_str("\\r"),
                '\\' => out.push_str("\\\\"),
                c if c.is_ascii_control() => {
                    let _ = write!(out, "\\x{:02x}", c as u8);
                }
                // Other control characters and the Unicode line and paragraph separators,
                // which some tools break lines at.
                c if c.is_control() || c == '\u{2028}' || c == '\u{2029}' => {
                    let _ = write!(out, "\\u{{{:x}}}", c as u32);
                }
                c => out.push(c),
            }
        }
        for b in chunk.invalid() {
            let _ = write!(out, "\\x{b:02x}");
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escaping_keeps_a_record_on_one_line() {
        assert_eq!(escape(b"user/1"), "user/1");
        assert_eq!(escape(b"a\tb"), "a\\tb");
        assert_eq!(escape(b"line1\nline2\r\n"), "line1\\nline2\\r\\n");
        assert_eq!(escape(b"C:\\dir"), "C:\\\\dir");
        assert_eq!(escape(b"\x00\x1b\x7f"), "\\x00\\x1b\\x7f");
        assert_eq!(escape(b"\xff\xfe"), "\\xff\\xfe");
        assert_eq!(escape("a\u{85}b\u{2028}".as_bytes()), "a\\u{85}b\\u{2028}");
        assert_eq!(escape("grüß 日本".as_bytes()), "grüß 日本");
        // A truncated multi-byte sequence is escaped byte by byte, the rest kept.
        assert_eq!(escape(b"ok\xe6\x97"), "ok\\xe6\\x97");
        for input in [&b"a\tb\nc\\d\xff"[..], b"\x01\x80x"] {
            let e = escape(input);
            assert!(!e.contains(['\t', '\n', '\r']), "{e:?}");
        }
    }

    #[test]
    fn escaping_is_unambiguous() {
        // A backslash in the data cannot be mistaken for the start of an escape.
        assert_ne!(escape(b"\\t"), escape(b"\t"));
        assert_ne!(escape(b"\\xff"), escape(b"\xff"));
    }

    #[derive(Serialize)]
    struct Pair {
        #[serde(flatten)]
        key: Bytes,
        #[serde(flatten)]
        value: Option<Bytes>,
    }

    #[test]
    fn json_names_bytes_as_text_or_base64() {
        let json = |k: &[u8], v: Option<&[u8]>| {
            serde_json::to_value(Pair {
                key: Bytes::new("key", k.to_vec()),
                value: v.map(|v| Bytes::new("value", v.to_vec())),
            })
            .expect("serializes")
        };
        assert_eq!(
            json(b"a\tb", Some(b"x")),
            serde_json::json!({"key": "a\tb", "value": "x"})
        );
        assert_eq!(
            json(b"k", Some(b"\xff\xfe")),
            serde_json::json!({"key": "k", "value_base64": "//4="})
        );
        assert_eq!(json(b"k", None), serde_json::json!({"key": "k"}));
    }
}
