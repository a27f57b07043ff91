//! Sizes and durations as operators write them: `64MiB` or `67108864`, `10s` or `10`.
//!
//! Flags, environment variables and config-file values all accept the unit forms; a bare
//! number keeps its old meaning (bytes, seconds). Serialized as plain numbers, so a value
//! round-trips exactly through the settings layers.

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// A number of bytes: `4096`, `8MiB`, `64 GiB`, `1.5KB`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct ByteCount(pub u64);

impl ByteCount {
    pub fn as_u64(self) -> u64 {
        self.0
    }

    /// As a `usize` (every limit a node holds in memory), refused when it does not fit.
    pub fn as_usize(self) -> Result<usize, String> {
        usize::try_from(self.0).map_err(|_| format!("{} bytes is too large here", self.0))
    }
}

impl FromStr for ByteCount {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        let s = s.trim();
        if let Ok(n) = s.parse::<u64>() {
            return Ok(ByteCount(n));
        }
        bytesize::ByteSize::from_str(s)
            .map(|b| ByteCount(b.as_u64()))
            .map_err(|e| format!("{s:?} is not a size (e.g. 4096, 64KiB, 8MiB): {e}"))
    }
}

impl fmt::Display for ByteCount {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

impl Serialize for ByteCount {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_u64(self.0)
    }
}

impl<'de> Deserialize<'de> for ByteCount {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        match NumberOrText::deserialize(d)? {
            NumberOrText::Integer(n) => u64::try_from(n)
                .map(ByteCount)
                .map_err(serde::de::Error::custom),
            NumberOrText::Float(_) => Err(serde::de::Error::custom(
                "a size is a whole number of bytes or a string such as \"8MiB\"",
            )),
            NumberOrText::Text(t) => t.parse().map_err(serde::de::Error::custom),
        }
    }
}

/// A duration: `10s`, `500ms`, `2m 30s`, or a bare number of seconds (`10`, `0.5`).
#[derive(Clone, Copy, Debug, PartialEq, PartialOrd)]
pub struct Seconds(pub Duration);

impl FromStr for Seconds {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        crate::cli::parse_duration(s).map(Seconds)
    }
}

impl Serialize for Seconds {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_f64(self.0.as_secs_f64())
    }
}

impl<'de> Deserialize<'de> for Seconds {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let secs = match NumberOrText::deserialize(d)? {
            NumberOrText::Integer(n) => n as f64,
            NumberOrText::Float(f) => f,
            NumberOrText::Text(t) => return t.parse().map_err(serde::de::Error::custom),
        };
        match Duration::try_from_secs_f64(secs) {
            Ok(d) if d <= crate::cli::MAX_DURATION => Ok(Seconds(d)),
            _ => Err(serde::de::Error::custom(format!(
                "{secs} is not a duration of at most 365 days"
            ))),
        }
    }
}

#[derive(Deserialize)]
#[serde(untagged)]
enum NumberOrText {
    Integer(i64),
    Float(f64),
    Text(String),
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_parse_with_and_without_units() {
        for (text, bytes) in [
            ("4096", 4096),
            ("8MiB", 8 << 20),
            ("64 GiB", 64 << 30),
            ("1KB", 1000),
            ("32MiB", 32 << 20),
        ] {
            assert_eq!(text.parse::<ByteCount>(), Ok(ByteCount(bytes)), "{text}");
        }
        for bad in ["", "lots", "-1", "8 parsecs"] {
            assert!(bad.parse::<ByteCount>().is_err(), "{bad}");
        }
    }

    #[test]
    fn sizes_and_durations_read_from_toml_as_numbers_or_text() {
        #[derive(Deserialize, Serialize, Debug, PartialEq)]
        struct Settings {
            size: ByteCount,
            wait: Seconds,
        }
        let numbers: Settings = toml::from_str("size = 8388608\nwait = 10.0\n").unwrap();
        let text: Settings = toml::from_str("size = \"8MiB\"\nwait = \"10s\"\n").unwrap();
        assert_eq!(numbers, text);
        assert_eq!(text.wait, Seconds(Duration::from_secs(10)));
        let whole: Settings = toml::from_str("size = 1\nwait = 3\n").unwrap();
        assert_eq!(whole.wait, Seconds(Duration::from_secs(3)));
        // Written back as plain numbers: exact, and readable by an older reader.
        let round: Settings = toml::from_str(&toml::to_string(&numbers).unwrap()).unwrap();
        assert_eq!(round, numbers);
        assert!(toml::from_str::<Settings>("size = 1.5\nwait = 1\n").is_err());
        assert!(toml::from_str::<Settings>("size = -1\nwait = 1\n").is_err());
        assert!(toml::from_str::<Settings>("size = 1\nwait = \"soon\"\n").is_err());
        assert!(toml::from_str::<Settings>("size = 1\nwait = 1e19\n").is_err());
        assert!(toml::from_str::<Settings>("size = 1\nwait = -1\n").is_err());
    }
}
