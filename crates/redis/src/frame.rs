//! Request frames: RESP arrays of bulk strings (what every client library sends) and inline
//! commands (what a person types into a raw connection), decoded under limits so that no
//! client can make a node allocate more than its request budget.

use redis_protocol::resp2::decode::decode_range;
use redis_protocol::resp2::types::RangeFrame;

/// Most arguments one request may carry.
pub const MAX_ARGS: usize = 1 << 20;
/// Longest inline command line (as Redis).
pub const MAX_INLINE_BYTES: usize = 64 << 10;

/// A command's arguments and the bytes its frame took.
type Decoded = (Vec<Vec<u8>>, usize);

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum FrameError {
    #[error("Protocol error: request larger than {0} bytes")]
    TooLarge(usize),
    #[error("Protocol error: invalid multibulk length")]
    BadArrayLength,
    #[error("Protocol error: expected a bulk string argument")]
    NotBulk,
    #[error("Protocol error: too big inline request")]
    InlineTooLarge,
    #[error("Protocol error: {0}")]
    Malformed(String),
}

/// The next complete command at the front of `buf` (its bytes removed), None when more
/// bytes are needed. An empty command (an empty array or a blank line) is skipped.
pub fn next_command(
    buf: &mut Vec<u8>,
    max_bytes: usize,
) -> Result<Option<Vec<Vec<u8>>>, FrameError> {
    loop {
        let Some(&first) = buf.first() else {
            return Ok(None);
        };
        let parsed = if first == b'*' {
            array(buf, max_bytes)?
        } else {
            inline(buf)?
        };
        match parsed {
            None => return Ok(None),
            Some((args, used)) => {
                buf.drain(..used);
                if !args.is_empty() {
                    return Ok(Some(args));
                }
            }
        }
    }
}

fn array(buf: &[u8], max_bytes: usize) -> Result<Option<Decoded>, FrameError> {
    // The element count is checked before the parser sees it: it sizes a vector.
    let Some(end) = buf.iter().position(|&b| b == b'\n') else {
        return incomplete(buf, max_bytes);
    };
    let header = std::str::from_utf8(&buf[1..end])
        .map_err(|_| FrameError::BadArrayLength)?
        .trim_end_matches('\r');
    let n: i64 = header.parse().map_err(|_| FrameError::BadArrayLength)?;
    if n > MAX_ARGS as i64 {
        return Err(FrameError::BadArrayLength);
    }
    if n <= 0 {
        return Ok(Some((Vec::new(), end + 1)));
    }
    match decode_range(buf) {
        Ok(Some((RangeFrame::Array(items), used))) => {
            let mut args = Vec::with_capacity(items.len());
            for item in items {
                match item {
                    RangeFrame::BulkString((s, e)) => args.push(buf[s..e].to_vec()),
                    _ => return Err(FrameError::NotBulk),
                }
            }
            Ok(Some((args, used)))
        }
        Ok(Some((_, _))) => Err(FrameError::NotBulk),
        Ok(None) => incomplete(buf, max_bytes),
        Err(e) => Err(FrameError::Malformed(e.to_string())),
    }
}

fn incomplete<T>(buf: &[u8], max_bytes: usize) -> Result<Option<T>, FrameError> {
    if buf.len() > max_bytes {
        Err(FrameError::TooLarge(max_bytes))
    } else {
        Ok(None)
    }
}

fn inline(buf: &[u8]) -> Result<Option<Decoded>, FrameError> {
    let Some(end) = buf.iter().position(|&b| b == b'\n') else {
        if buf.len() > MAX_INLINE_BYTES {
            return Err(FrameError::InlineTooLarge);
        }
        return Ok(None);
    };
    if end > MAX_INLINE_BYTES {
        return Err(FrameError::InlineTooLarge);
    }
    let args = buf[..end]
        .split(|b| b.is_ascii_whitespace())
        .filter(|a| !a.is_empty())
        .map(<[u8]>::to_vec)
        .collect();
    Ok(Some((args, end + 1)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn all(input: &[u8]) -> Result<Vec<Vec<Vec<u8>>>, FrameError> {
        let mut buf = input.to_vec();
        let mut out = Vec::new();
        while let Some(c) = next_command(&mut buf, 1 << 20)? {
            out.push(c);
        }
        Ok(out)
    }

    #[test]
    fn pipelined_arrays_and_inline_commands_decode_in_order() {
        let got =
            all(b"*2\r\n$3\r\nGET\r\n$1\r\nk\r\nPING\r\n*0\r\n\r\n*1\r\n$4\r\nPING\r\n").unwrap();
        assert_eq!(
            got,
            vec![
                vec![b"GET".to_vec(), b"k".to_vec()],
                vec![b"PING".to_vec()],
                vec![b"PING".to_vec()],
            ]
        );
    }

    #[test]
    fn a_partial_frame_waits_for_more_bytes() {
        let mut buf = b"*2\r\n$3\r\nGET\r\n$1\r".to_vec();
        assert_eq!(next_command(&mut buf, 1 << 20), Ok(None));
        buf.extend_from_slice(b"\nk\r\n");
        assert_eq!(
            next_command(&mut buf, 1 << 20).unwrap(),
            Some(vec![b"GET".to_vec(), b"k".to_vec()])
        );
        assert!(buf.is_empty());
    }

    #[test]
    fn hostile_frames_get_errors_not_allocations() {
        for bad in [
            &b"*99999999999999\r\n"[..],
            b"*-x\r\n",
            b"*1\r\n:5\r\n",
            b"*1\r\n$-5\r\n",
            b"*2\r\n$1\r\na\r\n*1\r\n$1\r\nb\r\n",
        ] {
            let mut buf = bad.to_vec();
            assert!(next_command(&mut buf, 1 << 20).is_err(), "{bad:?}");
        }
        // A declared bulk length far beyond the budget is refused once the budget is spent.
        let mut buf = b"*1\r\n$4000000000\r\n".to_vec();
        buf.resize(buf.len() + 2048, b'x');
        assert_eq!(
            next_command(&mut buf, 1024),
            Err(FrameError::TooLarge(1024))
        );
        let mut line = vec![b'a'; MAX_INLINE_BYTES + 2];
        assert_eq!(
            next_command(&mut line, 1 << 20),
            Err(FrameError::InlineTooLarge)
        );
    }

    #[test]
    fn random_bytes_never_panic() {
        let mut seed = 0x9e37_79b9_7f4a_7c15u64;
        for _ in 0..20_000 {
            let len = (seed % 64) as usize;
            let mut buf: Vec<u8> = (0..len)
                .map(|_| {
                    seed ^= seed << 13;
                    seed ^= seed >> 7;
                    seed ^= seed << 17;
                    b"*$:+-\r\n0123456789ab"[(seed % 19) as usize]
                })
                .collect();
            for _ in 0..4 {
                if !matches!(next_command(&mut buf, 4096), Ok(Some(_))) {
                    break;
                }
            }
        }
    }
}
