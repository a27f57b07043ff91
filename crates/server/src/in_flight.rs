//! The requests the client port is answering, so a graceful stop can wait for them before it
//! tells clients the connection is going away.
//!
//! A client that sees a connection closed by a clean HTTP/2 GOAWAY takes the requests it
//! loses that way for "never processed" and retries them elsewhere (brisk-client's outcome
//! rules). That holds only if the node answered every request it took before sending the
//! GOAWAY: a stop waits for [`InFlight::wait_idle`] first, and closes the port without a
//! GOAWAY (outcome unknown to the client) when requests are still running at its deadline.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::sync::watch;

/// Counts requests from the moment the server hands them over until their response is
/// decided. A [`tower::Layer`] for the client port's server.
#[derive(Clone)]
pub struct InFlight {
    count: Arc<watch::Sender<usize>>,
}

impl InFlight {
    pub fn new() -> Self {
        InFlight {
            count: Arc::new(watch::channel(0).0),
        }
    }

    /// Whether no request was running at some moment within `patience`.
    pub async fn wait_idle(&self, patience: Duration) -> bool {
        let mut rx = self.count.subscribe();
        tokio::time::timeout(patience, rx.wait_for(|n| *n == 0))
            .await
            .is_ok_and(|r| r.is_ok())
    }

    /// Requests running now.
    pub fn current(&self) -> usize {
        *self.count.borrow()
    }
}

impl<S> tower::Layer<S> for InFlight {
    type Service = Counted<S>;

    fn layer(&self, inner: S) -> Counted<S> {
        Counted {
            inner,
            count: self.count.clone(),
        }
    }
}

#[derive(Clone)]
pub struct Counted<S> {
    inner: S,
    count: Arc<watch::Sender<usize>>,
}

/// Takes one request off the count when dropped: when its response is decided, or when the
/// connection dropped the request's future.
struct Running(Arc<watch::Sender<usize>>);

impl Drop for Running {
    fn drop(&mut self) {
        self.0.send_modify(|n| *n = n.saturating_sub(1));
    }
}

impl<S, R> tower::Service<R> for Counted<S>
where
    S: tower::Service<R>,
    S::Future: Send + 'static,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = Pin<Box<dyn Future<Output = Result<S::Response, S::Error>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: R) -> Self::Future {
        self.count.send_modify(|n| *n += 1);
        let running = Running(self.count.clone());
        let response = self.inner.call(req);
        Box::pin(async move {
            let r = response.await;
            drop(running);
            r
        })
    }
}

#[cfg(test)]
mod tests {
    use std::convert::Infallible;

    use tower::{Layer, Service};

    use super::*;

    #[tokio::test]
    async fn counts_a_request_until_its_response_is_decided() {
        let in_flight = InFlight::new();
        let (release, released) = tokio::sync::oneshot::channel::<()>();
        let released = Arc::new(tokio::sync::Mutex::new(Some(released)));
        let mut svc = in_flight.layer(tower::service_fn(move |_: ()| {
            let released = released.clone();
            async move {
                if let Some(rx) = released.lock().await.take() {
                    let _ = rx.await;
                }
                Ok::<_, Infallible>(())
            }
        }));
        assert!(in_flight.wait_idle(Duration::from_millis(10)).await);
        let call = tokio::spawn(svc.call(()));
        assert_eq!(in_flight.current(), 1);
        assert!(!in_flight.wait_idle(Duration::from_millis(50)).await);
        release.send(()).unwrap();
        assert!(in_flight.wait_idle(Duration::from_secs(5)).await);
        call.await.unwrap().unwrap();
        // A request whose future is dropped unanswered (its connection went away) is no
        // longer counted either.
        let pending = svc.call(());
        assert_eq!(in_flight.current(), 1);
        drop(pending);
        assert_eq!(in_flight.current(), 0);
    }
}
