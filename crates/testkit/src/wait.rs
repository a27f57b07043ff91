//! Waiting on a condition with a deadline (never a bare sleep).

use std::time::{Duration, Instant};

/// How often [`until`] polls.
pub const POLL: Duration = Duration::from_millis(20);

/// Polls `check` every [`POLL`] until it returns Some, or returns None after `timeout`.
pub async fn until<T>(timeout: Duration, mut check: impl AsyncFnMut() -> Option<T>) -> Option<T> {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(v) = check().await {
            return Some(v);
        }
        if Instant::now() >= deadline {
            return None;
        }
        tokio::time::sleep(POLL).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn until_returns_the_first_value_or_gives_up() {
        let mut calls = 0;
        let got = until(Duration::from_secs(5), async || {
            calls += 1;
            (calls == 3).then_some(calls)
        })
        .await;
        assert_eq!(got, Some(3));
        let never: Option<()> = until(Duration::from_millis(50), async || None).await;
        assert_eq!(never, None);
    }
}
