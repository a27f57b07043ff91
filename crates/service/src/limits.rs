use crate::error::ServiceError;
use crate::types::KeyRange;

/// Request size limits (configurable on the server).
#[derive(Clone, Copy, Debug)]
pub struct Limits {
    pub max_key_bytes: usize,
    pub max_value_bytes: usize,
    /// Largest log entry a request may produce (keys, values and read-set keys together).
    pub max_entry_bytes: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_key_bytes: 4 << 10,
            max_value_bytes: 8 << 20,
            max_entry_bytes: 16 << 20,
        }
    }
}

impl Limits {
    pub fn key(&self, what: &str, key: &[u8]) -> Result<(), ServiceError> {
        if key.is_empty() {
            return Err(ServiceError::InvalidArgument(format!(
                "{what} must not be empty"
            )));
        }
        if key.len() > self.max_key_bytes {
            return Err(ServiceError::InvalidArgument(format!(
                "{what} is {} bytes; the limit is {} bytes",
                key.len(),
                self.max_key_bytes
            )));
        }
        Ok(())
    }

    pub fn value(&self, value: &[u8]) -> Result<(), ServiceError> {
        if value.len() > self.max_value_bytes {
            return Err(ServiceError::InvalidArgument(format!(
                "value is {} bytes; the limit is {} bytes",
                value.len(),
                self.max_value_bytes
            )));
        }
        Ok(())
    }

    /// Refuses a request whose log entry would carry more than `max_entry_bytes` of keys and
    /// values (every replica holds one entry's effects in memory while applying it).
    pub fn entry(&self, bytes: usize) -> Result<(), ServiceError> {
        if bytes > self.max_entry_bytes {
            return Err(ServiceError::InvalidArgument(format!(
                "the request's log entry would hold {bytes} bytes of keys and values; the limit is {} bytes (--max-entry-bytes)",
                self.max_entry_bytes
            )));
        }
        Ok(())
    }

    /// Validates a scan range: key sizes, and `start < end` when both are set.
    pub fn range(&self, range: &KeyRange) -> Result<(), ServiceError> {
        let (start, end, prefix): (&[u8], &[u8], &[u8]) = match range {
            KeyRange::Span { start, end } => (start, end.as_deref().unwrap_or_default(), &[]),
            KeyRange::Prefix(p) => (&[], &[], p),
        };
        for (what, k) in [("start", start), ("end", end), ("prefix", prefix)] {
            if k.len() > self.max_key_bytes {
                return Err(ServiceError::InvalidArgument(format!(
                    "{what} is {} bytes; the limit is {} bytes",
                    k.len(),
                    self.max_key_bytes
                )));
            }
        }
        if !end.is_empty() && start >= end {
            return Err(ServiceError::InvalidArgument(
                "empty range: start must be below end".into(),
            ));
        }
        Ok(())
    }

    pub fn scan_limit(&self, limit: u32) -> Result<usize, ServiceError> {
        match limit as usize {
            0 => Ok(crate::DEFAULT_SCAN_LIMIT),
            n if n > crate::MAX_SCAN_LIMIT => Err(ServiceError::InvalidArgument(format!(
                "limit {n} exceeds the maximum {}",
                crate::MAX_SCAN_LIMIT
            ))),
            n => Ok(n),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rejects_bad_input() {
        let l = Limits::default();
        assert!(l.key("key", b"").is_err());
        assert!(l.key("key", &vec![b'k'; 4097]).is_err());
        assert!(l.key("key", &vec![b'k'; 4096]).is_ok());
        assert!(l.value(&vec![0; (8 << 20) + 1]).is_err());
        let span = |s: &[u8], e: &[u8]| KeyRange::Span {
            start: s.to_vec(),
            end: Some(e.to_vec()),
        };
        assert!(l.range(&span(b"b", b"a")).is_err());
        assert!(l.range(&span(b"a", b"b")).is_ok());
        assert!(l.range(&KeyRange::Prefix(vec![b'p'; 4097])).is_err());
        assert!(l.scan_limit(200_000).is_err());
        assert_eq!(l.scan_limit(0).unwrap(), crate::DEFAULT_SCAN_LIMIT);
        assert!(l.entry(16 << 20).is_ok());
        assert!(l.entry((16 << 20) + 1).is_err());
    }
}
