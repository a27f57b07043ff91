//! Redis's glob patterns (KEYS, SCAN MATCH, HSCAN/SSCAN MATCH): `*`, `?`, `[abc]`, `[^a]`,
//! `[a-z]`, and `\` to take the next byte literally. Matching is byte-wise and case-sensitive,
//! and runs in O(len(pattern) × len(text)) whatever the pattern (no backtracking blow-up).

#[derive(Debug, PartialEq)]
enum Token {
    Any,
    One,
    Byte(u8),
    Class { negated: bool, items: Vec<(u8, u8)> },
}

fn tokens(p: &[u8]) -> Vec<Token> {
    let mut out = Vec::new();
    let mut i = 0;
    while i < p.len() {
        match p[i] {
            b'*' => {
                if out.last() != Some(&Token::Any) {
                    out.push(Token::Any);
                }
            }
            b'?' => out.push(Token::One),
            b'\\' if i + 1 < p.len() => {
                i += 1;
                out.push(Token::Byte(p[i]));
            }
            b'[' => {
                let mut j = i + 1;
                let negated = p.get(j) == Some(&b'^');
                if negated {
                    j += 1;
                }
                let mut items = Vec::new();
                while j < p.len() && p[j] != b']' {
                    let mut lo = p[j];
                    if lo == b'\\' && j + 1 < p.len() {
                        j += 1;
                        lo = p[j];
                    }
                    if j + 2 < p.len() && p[j + 1] == b'-' && p[j + 2] != b']' {
                        let hi = p[j + 2];
                        items.push((lo.min(hi), lo.max(hi)));
                        j += 3;
                    } else {
                        items.push((lo, lo));
                        j += 1;
                    }
                }
                // An unterminated class runs to the end of the pattern, as in Redis.
                out.push(Token::Class { negated, items });
                i = j;
            }
            b => out.push(Token::Byte(b)),
        }
        i += 1;
    }
    out
}

fn one(t: &Token, b: u8) -> bool {
    match t {
        Token::Any | Token::One => true,
        Token::Byte(x) => *x == b,
        Token::Class { negated, items } => {
            items.iter().any(|&(lo, hi)| lo <= b && b <= hi) != *negated
        }
    }
}

/// Whether `text` matches `pattern`.
pub fn matches(pattern: &[u8], text: &[u8]) -> bool {
    let toks = tokens(pattern);
    // reach[i]: the first i tokens can match the text read so far.
    let mut reach = vec![false; toks.len() + 1];
    reach[0] = true;
    for i in 0..toks.len() {
        if toks[i] == Token::Any && reach[i] {
            reach[i + 1] = true;
        }
    }
    for &b in text {
        let mut next = vec![false; toks.len() + 1];
        for i in 0..toks.len() {
            if !reach[i] {
                continue;
            }
            match toks[i] {
                Token::Any => next[i] = true,
                ref t if one(t, b) => next[i + 1] = true,
                _ => {}
            }
        }
        for i in 0..toks.len() {
            if toks[i] == Token::Any && next[i] {
                next[i + 1] = true;
            }
        }
        reach = next;
    }
    reach[toks.len()]
}

#[cfg(test)]
mod tests {
    use super::matches;

    #[test]
    fn patterns_match_as_in_redis() {
        for (p, t) in [
            ("*", ""),
            ("*", "anything"),
            ("h?llo", "hello"),
            ("h*llo", "heeeello"),
            ("h[ae]llo", "hallo"),
            ("h[^e]llo", "hallo"),
            ("h[a-b]llo", "hbllo"),
            ("user:*:name", "user:42:name"),
            ("a\\*b", "a*b"),
        ] {
            assert!(matches(p.as_bytes(), t.as_bytes()), "{p} {t}");
        }
        for (p, t) in [
            ("h?llo", "hllo"),
            ("h[^e]llo", "hello"),
            ("h[a-b]llo", "hcllo"),
            ("a\\*b", "axb"),
            ("abc", "abcd"),
        ] {
            assert!(!matches(p.as_bytes(), t.as_bytes()), "{p} {t}");
        }
        // No exponential backtracking.
        let text = vec![b'a'; 5000];
        assert!(!matches(b"*a*a*a*a*a*a*a*a*a*b", &text));
    }
}
