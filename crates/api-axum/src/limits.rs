//! Limits that keep one client from hurting the others: a per-user token bucket on
//! message sends (REST and WebSocket share it), a cap on each user's open
//! WebSockets, and a time limit on producing a response.
//!
//! State is per instance: with several instances behind a load balancer each enforces
//! its own buckets, which bounds a user to N times the rate at worst.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use axum::Router;
use axum::extract::{MatchedPath, Request};
use axum::http::Method;
use axum::middleware::{self, Next};
use axum::response::{IntoResponse as _, Response};
use confab_domain::user::UserId;

use crate::auth::Auth;
use crate::error::ApiError;
use crate::observability::LIMITED;

/// How many messages a user may send.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SendRate {
    /// Sustained messages per minute; 0 turns the limit off.
    pub per_minute: u32,
    /// Messages allowed at once above the sustained rate (the bucket's size).
    pub burst: u32,
}

/// The limits' settings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LimitSettings {
    /// Message sends per user.
    pub send_rate: SendRate,
    /// Open WebSockets per user; 0 means no limit.
    pub sockets_per_user: u32,
    /// Time to produce a response head; zero turns it off.
    pub request_timeout: Duration,
}

/// The shared state of the limits; cheap to clone.
#[derive(Clone)]
pub struct Limiter {
    inner: Arc<Inner>,
}

struct Inner {
    settings: LimitSettings,
    auth: Arc<Auth>,
    // A std mutex: the critical sections are a few arithmetic operations and never
    // await, so an async mutex would only add cost.
    buckets: Mutex<HashMap<UserId, Bucket>>,
    sockets: Mutex<HashMap<UserId, u32>>,
}

#[derive(Debug, Clone, Copy)]
struct Bucket {
    tokens: f64,
    updated: Instant,
}

/// Buckets untouched for this long are full again and are forgotten, so that the map
/// holds only users active recently.
const BUCKET_IDLE: Duration = Duration::from_secs(600);

impl Limiter {
    /// Limits with `settings`; `auth` names the caller of a REST send.
    pub fn new(settings: LimitSettings, auth: Arc<Auth>) -> Self {
        Self {
            inner: Arc::new(Inner {
                settings,
                auth,
                buckets: Mutex::new(HashMap::new()),
                sockets: Mutex::new(HashMap::new()),
            }),
        }
    }

    /// Takes one send from `user`'s bucket.
    ///
    /// # Errors
    /// How long until the next send is allowed, when the bucket is empty.
    pub fn try_send(&self, user: &UserId) -> Result<(), Duration> {
        self.take_at(user, Instant::now())
    }

    /// [`Limiter::try_send`] at a given instant, so tests need not wait for refills.
    fn take_at(&self, user: &UserId, now: Instant) -> Result<(), Duration> {
        let rate = self.inner.settings.send_rate;
        if rate.per_minute == 0 {
            return Ok(());
        }
        let capacity = f64::from(rate.burst.max(1));
        let per_second = f64::from(rate.per_minute) / 60.0;
        let mut buckets = self
            .inner
            .buckets
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if buckets.len() > 10_000 {
            buckets.retain(|_, bucket| now.saturating_duration_since(bucket.updated) < BUCKET_IDLE);
        }
        let bucket = buckets.entry(user.clone()).or_insert(Bucket {
            tokens: capacity,
            updated: now,
        });
        let refill = now.saturating_duration_since(bucket.updated).as_secs_f64() * per_second;
        bucket.tokens = (bucket.tokens + refill).min(capacity);
        bucket.updated = bucket.updated.max(now);
        if bucket.tokens >= 1.0 {
            bucket.tokens -= 1.0;
            Ok(())
        } else {
            metrics::counter!(LIMITED, "limit" => "send_rate").increment(1);
            Err(Duration::from_secs_f64((1.0 - bucket.tokens) / per_second))
        }
    }

    /// Takes one of `user`'s WebSocket slots; the slot is given back when the returned
    /// guard drops.
    ///
    /// # Errors
    /// `rate_limited` when the user already holds as many sockets as allowed.
    pub fn open_socket(&self, user: &UserId) -> Result<SocketSlot, ApiError> {
        let max = self.inner.settings.sockets_per_user;
        let mut sockets = self
            .inner
            .sockets
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        let open = sockets.entry(user.clone()).or_insert(0);
        if max > 0 && *open >= max {
            metrics::counter!(LIMITED, "limit" => "sockets_per_user").increment(1);
            return Err(ApiError::rate_limited(Duration::from_secs(1)));
        }
        *open += 1;
        Ok(SocketSlot {
            limiter: self.clone(),
            user: user.clone(),
        })
    }

    /// Adds the send rate limit and the request time limit to `router`.
    pub fn apply(&self, router: Router) -> Router {
        let limiter = self.clone();
        let router = router.layer(middleware::from_fn(move |request, next| {
            let limiter = limiter.clone();
            async move { limiter.limit_sends(request, next).await }
        }));
        let timeout = self.inner.settings.request_timeout;
        if timeout.is_zero() {
            return router;
        }
        router.layer(middleware::from_fn(move |request: Request, next: Next| {
            time_limit(timeout, request, next)
        }))
    }

    /// Refuses a REST message send (or a start, which may carry a first message) over
    /// the caller's rate. Requests without a valid token pass through to be refused by
    /// the handler with the usual 401.
    async fn limit_sends(self, request: Request, next: Next) -> Response {
        if request.method() == Method::POST && is_send_route(&request) {
            let caller = crate::auth::bearer_token(request.headers())
                .ok()
                .and_then(|token| self.inner.auth.verify(token).ok());
            if let Some(caller) = caller
                && let Err(retry_after) = self.try_send(&caller.user_id)
            {
                return ApiError::rate_limited(retry_after).into_response();
            }
        }
        next.run(request).await
    }
}

fn is_send_route(request: &Request) -> bool {
    request
        .extensions()
        .get::<MatchedPath>()
        .is_some_and(|path| {
            let path = path.as_str();
            path.ends_with("/conversations/{id}/messages") || path.ends_with("/conversations/start")
        })
}

/// Answers 503 `unavailable` when the response head is not ready in time. Streamed
/// bodies (SSE, exports) are not cut: their head comes at once.
async fn time_limit(timeout: Duration, request: Request, next: Next) -> Response {
    match tokio::time::timeout(timeout, next.run(request)).await {
        Ok(response) => response,
        Err(elapsed) => {
            metrics::counter!(LIMITED, "limit" => "request_timeout").increment(1);
            ApiError::unavailable(&elapsed).into_response()
        }
    }
}

/// One open WebSocket of a user; dropping it frees the slot.
pub struct SocketSlot {
    limiter: Limiter,
    user: UserId,
}

impl Drop for SocketSlot {
    fn drop(&mut self) {
        let mut sockets = self
            .limiter
            .inner
            .sockets
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if let Some(open) = sockets.get_mut(&self.user) {
            *open = open.saturating_sub(1);
            if *open == 0 {
                sockets.remove(&self.user);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::time::{Duration, Instant};

    use confab_domain::user::UserId;

    use super::{LimitSettings, Limiter, SendRate};
    use crate::auth::Auth;

    fn limiter(per_minute: u32, burst: u32, sockets: u32) -> Limiter {
        Limiter::new(
            LimitSettings {
                send_rate: SendRate { per_minute, burst },
                sockets_per_user: sockets,
                request_timeout: Duration::ZERO,
            },
            Arc::new(Auth::new(b"unit-test-secret-unit-test-secret")),
        )
    }

    fn user(id: &str) -> UserId {
        UserId::parse(id).unwrap()
    }

    #[test]
    fn a_full_bucket_allows_a_burst_then_says_when_the_next_token_comes() {
        let limiter = limiter(60, 3, 0);
        let start = Instant::now();
        for _ in 0..3 {
            assert!(limiter.take_at(&user("a"), start).is_ok());
        }
        let wait = limiter.take_at(&user("a"), start).unwrap_err();
        // One token a second at 60 a minute.
        assert!(
            wait > Duration::from_millis(990) && wait <= Duration::from_secs(1),
            "{wait:?}"
        );
    }

    #[test]
    fn tokens_refill_at_the_rate_up_to_the_burst() {
        let limiter = limiter(60, 2, 0);
        let start = Instant::now();
        assert!(limiter.take_at(&user("a"), start).is_ok());
        assert!(limiter.take_at(&user("a"), start).is_ok());
        assert!(limiter.take_at(&user("a"), start).is_err());
        let later = start + Duration::from_secs(1);
        assert!(limiter.take_at(&user("a"), later).is_ok());
        assert!(limiter.take_at(&user("a"), later).is_err());
        // A long pause refills no more than the burst.
        let much_later = later + Duration::from_secs(3600);
        assert!(limiter.take_at(&user("a"), much_later).is_ok());
        assert!(limiter.take_at(&user("a"), much_later).is_ok());
        assert!(limiter.take_at(&user("a"), much_later).is_err());
    }

    #[test]
    fn each_user_has_a_bucket_of_their_own() {
        let limiter = limiter(60, 1, 0);
        let now = Instant::now();
        assert!(limiter.take_at(&user("a"), now).is_ok());
        assert!(limiter.take_at(&user("a"), now).is_err());
        assert!(limiter.take_at(&user("b"), now).is_ok());
    }

    #[test]
    fn a_rate_of_zero_turns_the_limit_off() {
        let limiter = limiter(0, 1, 0);
        let now = Instant::now();
        for _ in 0..1000 {
            assert!(limiter.take_at(&user("a"), now).is_ok());
        }
    }

    #[test]
    fn socket_slots_are_counted_per_user_and_freed_on_drop() {
        let limiter = limiter(0, 1, 2);
        let first = limiter.open_socket(&user("a")).unwrap();
        let _second = limiter.open_socket(&user("a")).unwrap();
        assert!(limiter.open_socket(&user("a")).is_err());
        let _other = limiter.open_socket(&user("b")).unwrap();
        drop(first);
        assert!(limiter.open_socket(&user("a")).is_ok());
    }

    #[test]
    fn zero_sockets_per_user_means_no_limit() {
        let limiter = limiter(0, 1, 0);
        let slots: Vec<_> = (0..100)
            .map(|_| limiter.open_socket(&user("a")).unwrap())
            .collect();
        assert_eq!(slots.len(), 100);
    }
}
