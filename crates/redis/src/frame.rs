//! Request frames: RESP arrays of bulk strings (what every client library sends) and inline
//! commands (what a person types into a raw connection), decoded under limits so that no
//! client can make a node allocate more than its request budget or recurse at all.
//!
//! Written here rather than with a RESP crate: a request has exactly one shape (an array of
//! bulk strings), and the general decoders recurse into nested arrays without a depth limit
//! (a 400 KB request of nested `*1` headers overflows a worker's stack) and parse the buffer
//! from its start again after every read. This one is iterative, refuses anything but bulk
//! strings inside the array, and resumes where the previous read stopped.

/// Most arguments one request may carry.
pub const MAX_ARGS: usize = 1 << 20;
/// Longest inline command line, and longest header line (as Redis).
pub const MAX_INLINE_BYTES: usize = 64 << 10;

/// A command's arguments and the bytes its frame took.
type Decoded = (Vec<Vec<u8>>, usize);

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum FrameError {
    #[error("ERR Protocol error: request larger than {0} bytes")]
    TooLarge(usize),
    #[error("ERR Protocol error: invalid multibulk length")]
    BadArrayLength,
    #[error("ERR Protocol error: invalid bulk length")]
    BadBulkLength,
    #[error("ERR Protocol error: expected '$', got '{0}'")]
    NotBulk(char),
    #[error("ERR Protocol error: too big inline request")]
    InlineTooLarge,
    #[error("ERR Protocol error: bulk string not followed by CRLF")]
    MissingCrlf,
}

/// Decodes commands from a connection's input, keeping its place in a partly received
/// request between reads.
#[derive(Default)]
pub struct Decoder {
    /// Arguments of the request being read, and how many it has.
    args: Vec<Vec<u8>>,
    expected: Option<usize>,
    /// Where the next unread element starts in the buffer.
    pos: usize,
}

impl Decoder {
    /// The next complete command at the front of `buf` and the bytes it took (the caller
    /// drops them before the next call), None when more bytes are needed. An empty command
    /// (an empty array, a blank line) comes back with no arguments: the caller skips it.
    pub fn next_command(
        &mut self,
        buf: &[u8],
        max_bytes: usize,
    ) -> Result<Option<Decoded>, FrameError> {
        let Some(&first) = buf.first() else {
            return Ok(None);
        };
        let done = if first == b'*' || self.expected.is_some() {
            self.array(buf)?
        } else {
            inline(buf)?
        };
        // Refused both while it is still arriving and when it arrived whole in one read.
        let size = match &done {
            Some((_, used)) => *used,
            None => buf.len(),
        };
        if size > max_bytes {
            return Err(FrameError::TooLarge(max_bytes));
        }
        Ok(done)
    }

    fn array(&mut self, buf: &[u8]) -> Result<Option<Decoded>, FrameError> {
        if self.expected.is_none() {
            let Some((n, next)) = line_number(buf, 1)? else {
                return Ok(None);
            };
            if n > MAX_ARGS as i64 {
                return Err(FrameError::BadArrayLength);
            }
            if n <= 0 {
                return Ok(Some((Vec::new(), next)));
            }
            self.expected = Some(n as usize);
            self.args = Vec::with_capacity((n as usize).min(1024));
            self.pos = next;
        }
        let expected = self.expected.unwrap_or(0);
        while self.args.len() < expected {
            let Some(&kind) = buf.get(self.pos) else {
                return Ok(None);
            };
            if kind != b'$' {
                return Err(FrameError::NotBulk(kind as char));
            }
            let Some((len, start)) = line_number(buf, self.pos + 1)? else {
                return Ok(None);
            };
            if len < 0 || len > i64::from(u32::MAX) {
                return Err(FrameError::BadBulkLength);
            }
            let end = start + len as usize;
            if buf.len() < end + 2 {
                return Ok(None);
            }
            if &buf[end..end + 2] != b"\r\n" {
                return Err(FrameError::MissingCrlf);
            }
            self.args.push(buf[start..end].to_vec());
            self.pos = end + 2;
        }
        let used = self.pos;
        self.expected = None;
        self.pos = 0;
        Ok(Some((std::mem::take(&mut self.args), used)))
    }
}

/// The integer on the line starting at `from`, and where the next line starts.
fn line_number(buf: &[u8], from: usize) -> Result<Option<(i64, usize)>, FrameError> {
    let rest = buf.get(from..).unwrap_or_default();
    let Some(nl) = rest.iter().take(MAX_INLINE_BYTES).position(|&b| b == b'\n') else {
        if rest.len() > MAX_INLINE_BYTES {
            return Err(FrameError::BadBulkLength);
        }
        return Ok(None);
    };
    let text = std::str::from_utf8(&rest[..nl])
        .map_err(|_| FrameError::BadArrayLength)?
        .trim_end_matches('\r');
    let n = text.parse().map_err(|_| FrameError::BadArrayLength)?;
    Ok(Some((n, from + nl + 1)))
}

fn inline(buf: &[u8]) -> Result<Option<Decoded>, FrameError> {
    let Some(end) = buf
        .iter()
        .take(MAX_INLINE_BYTES + 1)
        .position(|&b| b == b'\n')
    else {
        if buf.len() > MAX_INLINE_BYTES {
            return Err(FrameError::InlineTooLarge);
        }
        return Ok(None);
    };
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

    /// Every complete command in `buf`, dropping what they took.
    fn drain(
        d: &mut Decoder,
        buf: &mut Vec<u8>,
        max: usize,
    ) -> Result<Vec<Vec<Vec<u8>>>, FrameError> {
        let mut out = Vec::new();
        let mut taken = 0;
        while let Some((c, used)) = d.next_command(&buf[taken..], max)? {
            taken += used;
            if !c.is_empty() {
                out.push(c);
            }
        }
        buf.drain(..taken);
        Ok(out)
    }

    fn all(input: &[u8]) -> Result<Vec<Vec<Vec<u8>>>, FrameError> {
        drain(&mut Decoder::default(), &mut input.to_vec(), 1 << 20)
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
    fn a_request_split_anywhere_decodes_the_same() {
        let whole = b"*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$5\r\nv\r\nxy\r\n*1\r\n$4\r\nPING\r\n";
        for cut in 0..whole.len() {
            let mut d = Decoder::default();
            let mut buf = whole[..cut].to_vec();
            let mut got = drain(&mut d, &mut buf, 1 << 20).unwrap();
            buf.extend_from_slice(&whole[cut..]);
            got.extend(drain(&mut d, &mut buf, 1 << 20).unwrap());
            assert_eq!(
                got,
                vec![
                    vec![b"SET".to_vec(), b"k".to_vec(), b"v\r\nxy".to_vec()],
                    vec![b"PING".to_vec()]
                ],
                "cut at {cut}"
            );
            assert!(buf.is_empty());
        }
    }

    #[test]
    fn an_empty_command_before_a_split_request_keeps_the_place() {
        let mut d = Decoder::default();
        let mut buf = b"\r\n*1\r\n$4\r\nPI".to_vec();
        assert!(drain(&mut d, &mut buf, 1 << 20).unwrap().is_empty());
        buf.extend_from_slice(b"NG\r\n");
        assert_eq!(
            drain(&mut d, &mut buf, 1 << 20).unwrap(),
            vec![vec![b"PING".to_vec()]]
        );
    }

    #[test]
    fn hostile_frames_get_errors_not_allocations_or_recursion() {
        for bad in [
            &b"*99999999999999\r\n"[..],
            b"*-x\r\n",
            b"*1\r\n:5\r\n",
            b"*1\r\n$-5\r\n",
            b"*1\r\n$99999999999\r\n",
            b"*2\r\n$1\r\na\r\n*1\r\n$1\r\nb\r\n",
            b"*1\r\n$1\r\nab\r\n",
        ] {
            assert!(all(bad).is_err(), "{bad:?}");
        }
        // Nested array headers are refused at the first one, however deep.
        let nested = b"*1\r\n".repeat(200_000);
        assert_eq!(all(&nested), Err(FrameError::NotBulk('*')));
        // A declared bulk length beyond the budget is refused once the budget is spent.
        let mut buf = b"*1\r\n$4000000000\r\n".to_vec();
        buf.resize(buf.len() + 2048, b'x');
        assert_eq!(
            Decoder::default().next_command(&buf, 1024),
            Err(FrameError::TooLarge(1024))
        );
        // A request over the budget that arrived whole is refused too.
        let mut whole = b"*2\r\n$3\r\nset\r\n$2000\r\n".to_vec();
        whole.resize(whole.len() + 2000, b'x');
        whole.extend_from_slice(b"\r\n");
        assert_eq!(
            Decoder::default().next_command(&whole, 1024),
            Err(FrameError::TooLarge(1024))
        );
        assert!(matches!(
            Decoder::default().next_command(&whole, 4096),
            Ok(Some(_))
        ));
        let line = vec![b'a'; MAX_INLINE_BYTES + 2];
        assert_eq!(
            Decoder::default().next_command(&line, 1 << 20),
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
            let _ = drain(&mut Decoder::default(), &mut buf, 4096);
        }
    }
}
