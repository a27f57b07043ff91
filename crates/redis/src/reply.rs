//! Replies, written straight into the connection's output buffer in RESP2 or RESP3.
//!
//! Encoding is written here rather than through the parser crate's frame types: a reply is
//! a direct write of a few bytes per element, where a frame tree would cost an allocation per
//! element and a hashable key per map entry.

use std::io::Write;

#[derive(Clone, Debug, PartialEq)]
pub enum Reply {
    /// `+OK`
    Ok,
    Simple(String),
    /// The full error line, code first (`ERR ...`, `WRONGTYPE ...`).
    Error(String),
    Int(i64),
    Bulk(Vec<u8>),
    /// A missing value (`$-1` in RESP2).
    Nil,
    /// A missing array (`*-1` in RESP2: EXEC aborted by WATCH).
    NilArray,
    Array(Vec<Reply>),
    /// A map in RESP3; a flat array of keys and values in RESP2.
    Map(Vec<(Reply, Reply)>),
    /// A set in RESP3; an array in RESP2.
    Set(Vec<Reply>),
    /// A double in RESP3; its decimal form as a bulk string in RESP2 (sorted-set scores).
    Double(f64),
    /// Pairs (a member and its score): an array of 2-element arrays in RESP3, one flat array
    /// in RESP2 (WITHSCORES).
    Pairs(Vec<(Reply, Reply)>),
}

impl Reply {
    pub fn bulk(s: impl AsRef<[u8]>) -> Reply {
        Reply::Bulk(s.as_ref().to_vec())
    }

    pub fn error(e: impl std::fmt::Display) -> Reply {
        Reply::Error(e.to_string())
    }

    /// Writes the reply in RESP3 when `resp3`, else RESP2.
    pub fn encode(&self, out: &mut Vec<u8>, resp3: bool) {
        match self {
            Reply::Ok => out.extend_from_slice(b"+OK\r\n"),
            Reply::Simple(s) => line(out, b'+', s.as_bytes()),
            Reply::Error(e) => line(out, b'-', e.as_bytes()),
            Reply::Int(n) => {
                let _ = write!(out, ":{n}\r\n");
            }
            Reply::Bulk(b) => {
                let _ = write!(out, "${}\r\n", b.len());
                out.extend_from_slice(b);
                out.extend_from_slice(b"\r\n");
            }
            Reply::Nil if resp3 => out.extend_from_slice(b"_\r\n"),
            Reply::Nil => out.extend_from_slice(b"$-1\r\n"),
            Reply::NilArray if resp3 => out.extend_from_slice(b"_\r\n"),
            Reply::NilArray => out.extend_from_slice(b"*-1\r\n"),
            Reply::Array(items) => {
                let _ = write!(out, "*{}\r\n", items.len());
                for i in items {
                    i.encode(out, resp3);
                }
            }
            Reply::Double(d) if resp3 => {
                let _ = write!(out, ",{}\r\n", score_text(*d));
            }
            Reply::Double(d) => Reply::Bulk(score_text(*d).into_bytes()).encode(out, resp3),
            Reply::Pairs(pairs) if resp3 => {
                let _ = write!(out, "*{}\r\n", pairs.len());
                for (a, b) in pairs {
                    out.extend_from_slice(b"*2\r\n");
                    a.encode(out, resp3);
                    b.encode(out, resp3);
                }
            }
            Reply::Pairs(pairs) => {
                let _ = write!(out, "*{}\r\n", pairs.len() * 2);
                for (a, b) in pairs {
                    a.encode(out, resp3);
                    b.encode(out, resp3);
                }
            }
            Reply::Set(items) => {
                let kind = if resp3 { '~' } else { '*' };
                let _ = write!(out, "{kind}{}\r\n", items.len());
                for i in items {
                    i.encode(out, resp3);
                }
            }
            Reply::Map(pairs) => {
                if resp3 {
                    let _ = write!(out, "%{}\r\n", pairs.len());
                } else {
                    let _ = write!(out, "*{}\r\n", pairs.len() * 2);
                }
                for (k, v) in pairs {
                    k.encode(out, resp3);
                    v.encode(out, resp3);
                }
            }
        }
    }
}

/// A simple string or error line; CR and LF inside would end the line early, so they become
/// spaces.
fn line(out: &mut Vec<u8>, kind: u8, text: &[u8]) {
    out.push(kind);
    out.extend(
        text.iter()
            .map(|&b| if b == b'\r' || b == b'\n' { b' ' } else { b }),
    );
    out.extend_from_slice(b"\r\n");
}

/// A sorted-set score as Redis prints it: the shortest decimal that reads back the same,
/// `inf`/`-inf`.
pub fn score_text(d: f64) -> String {
    if d.is_infinite() {
        if d > 0.0 { "inf" } else { "-inf" }.into()
    } else {
        format!("{d}")
    }
}

/// A float result as INCRBYFLOAT prints it. Redis computes in long double and prints 17
/// fixed decimals with trailing zeros trimmed, so 0.1 + 0.2 prints as 0.3: here the f64 is
/// rounded to 15 significant digits (what f64 carries exactly), printed in its shortest
/// form, and cut to 17 decimals.
pub fn format_double(d: f64) -> String {
    if d.is_infinite() {
        return if d > 0.0 { "inf" } else { "-inf" }.into();
    }
    let rounded: f64 = format!("{d:.14e}").parse().unwrap_or(d);
    let text = rounded.to_string();
    match text.split_once('.') {
        Some((_, decimals)) if decimals.len() > 17 => {
            let fixed = format!("{rounded:.17}");
            let trimmed = fixed.trim_end_matches('0').trim_end_matches('.');
            if trimmed == "-0" { "0" } else { trimmed }.to_string()
        }
        _ => text,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn enc(r: Reply, resp3: bool) -> String {
        let mut out = Vec::new();
        r.encode(&mut out, resp3);
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn replies_in_both_protocols() {
        assert_eq!(enc(Reply::Nil, false), "$-1\r\n");
        assert_eq!(enc(Reply::Nil, true), "_\r\n");
        assert_eq!(enc(Reply::bulk("ab"), false), "$2\r\nab\r\n");
        let m = Reply::Map(vec![(Reply::bulk("k"), Reply::Int(1))]);
        assert_eq!(enc(m.clone(), false), "*2\r\n$1\r\nk\r\n:1\r\n");
        assert_eq!(enc(m, true), "%1\r\n$1\r\nk\r\n:1\r\n");
        assert_eq!(
            enc(Reply::Error("ERR a\r\nb".into()), false),
            "-ERR a  b\r\n"
        );
        assert_eq!(enc(Reply::Set(vec![Reply::Int(1)]), true), "~1\r\n:1\r\n");
    }

    #[test]
    fn floats_print_as_redis_prints_them() {
        assert_eq!(format_double(0.1 + 0.2), "0.3");
        assert_eq!(format_double(10.5 + 0.1), "10.6");
        assert_eq!(format_double(5200.0), "5200");
        assert_eq!(format_double(1e-20), "0");
        assert_eq!(format_double(-1.5), "-1.5");
        assert_eq!(format_double(f64::INFINITY), "inf");
    }
}
