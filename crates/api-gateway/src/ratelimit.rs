//! Per-user rate limits: token buckets refilled continuously at `per_second` up to `burst`. A
//! request takes one token (a batch one per event); a request that finds too few is answered
//! 429 with `Retry-After`, the whole seconds until it would fit.
//!
//! Each route counts against its class's bucket, `events` (`/api/v1/events/...`, batches
//! included) or `media` (the intent and legacy media routes), unless `routes` names it (by its
//! OpenAPI operation id): then it has a bucket and a limit of its own. Webhooks come from the
//! database, not from users, and are not limited.
//!
//! The buckets are in memory, so each replica limits on its own: with N replicas behind a
//! balancer a user gets up to N times the rate. That keeps the check off the network; a shared
//! limit would need a shared store on every request.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use serde::Deserialize;

use crate::error::ApiError;

/// One class's limit. `per_second` 0 turns the limit off.
#[derive(Debug, Clone, Copy, Deserialize, PartialEq)]
#[serde(default)]
pub struct Limit {
    /// Tokens added per second.
    pub per_second: f64,
    /// Most tokens a bucket holds: the largest burst (and the largest batch) let through at once.
    pub burst: u32,
}

impl Default for Limit {
    fn default() -> Self {
        Self {
            per_second: 0.0,
            burst: 0,
        }
    }
}

/// The limits of each class, and of routes that have their own.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(default)]
pub struct RateLimitSettings {
    /// `/api/v1/events/{key}` and its batch route.
    pub events: Limit,
    /// The intent and legacy media routes.
    pub media: Limit,
    /// Routes with a bucket and limit of their own, by operation id ([`Route::name`]).
    pub routes: HashMap<String, Limit>,
}

impl RateLimitSettings {
    /// Refuses a route name that is not a limited route (a typo would otherwise be ignored).
    pub fn validate(&self) -> Result<(), String> {
        match self
            .routes
            .keys()
            .find(|name| !Route::ALL.iter().any(|route| route.name() == name.as_str()))
        {
            Some(unknown) => Err(format!(
                "gateway.rate_limits.routes: unknown route {unknown:?}; known: {}",
                Route::ALL.map(Route::name).join(", ")
            )),
            None => Ok(()),
        }
    }
}

impl Default for RateLimitSettings {
    fn default() -> Self {
        Self {
            events: Limit {
                per_second: 50.0,
                burst: 200,
            },
            media: Limit {
                per_second: 5.0,
                burst: 20,
            },
            routes: HashMap::new(),
        }
    }
}

/// A limited route.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Route {
    /// `POST /api/v1/events/{key}`.
    PublishEvent,
    /// `POST /api/v1/events/{key}/batch`.
    PublishBatch,
    /// `POST /api/v1/media/upload-intent`.
    UploadIntent,
    /// `POST /api/v1/media/download-intent`.
    DownloadIntent,
    /// `POST /api/v1/media/delete-intent`.
    DeleteIntent,
    /// `POST /api/v1/media/upload-url`.
    LegacyUploadUrl,
    /// `POST /api/v1/media/download-url`.
    LegacyDownloadUrl,
    /// `POST /api/v1/media/delete`.
    LegacyDelete,
}

impl Route {
    /// Every limited route.
    pub const ALL: [Route; 8] = [
        Route::PublishEvent,
        Route::PublishBatch,
        Route::UploadIntent,
        Route::DownloadIntent,
        Route::DeleteIntent,
        Route::LegacyUploadUrl,
        Route::LegacyDownloadUrl,
        Route::LegacyDelete,
    ];

    /// Its name in the settings: the OpenAPI operation id.
    pub fn name(self) -> &'static str {
        match self {
            Route::PublishEvent => "publish_event",
            Route::PublishBatch => "publish_batch",
            Route::UploadIntent => "upload_intent",
            Route::DownloadIntent => "download_intent",
            Route::DeleteIntent => "delete_intent",
            Route::LegacyUploadUrl => "legacy_upload_url",
            Route::LegacyDownloadUrl => "legacy_download_url",
            Route::LegacyDelete => "legacy_delete",
        }
    }

    fn class(self) -> &'static str {
        match self {
            Route::PublishEvent | Route::PublishBatch => "events",
            _ => "media",
        }
    }
}

#[derive(Debug, Clone, Copy)]
struct Bucket {
    tokens: f64,
    at: Instant,
}

/// How often (in checks) idle buckets are dropped.
const SWEEP_EVERY: u64 = 4096;

/// The buckets of every user.
#[derive(Debug)]
pub struct RateLimiter {
    settings: RateLimitSettings,
    state: Mutex<State>,
}

#[derive(Debug, Default)]
struct State {
    /// By user and bucket (a class, or a route with a limit of its own).
    buckets: HashMap<(String, &'static str), Bucket>,
    checks: u64,
}

impl RateLimiter {
    /// Limits as configured.
    pub fn new(settings: RateLimitSettings) -> Self {
        Self {
            settings,
            state: Mutex::default(),
        }
    }

    /// The bucket `route` counts against: its own when the settings give it a limit, else
    /// its class's.
    fn bucket(&self, route: Route) -> &'static str {
        if self.settings.routes.contains_key(route.name()) {
            route.name()
        } else {
            route.class()
        }
    }

    fn limit_of_bucket(&self, bucket: &str) -> Limit {
        match bucket {
            "events" => self.settings.events,
            "media" => self.settings.media,
            route => self.settings.routes.get(route).copied().unwrap_or_default(),
        }
    }

    /// Takes `cost` tokens from the user's bucket for `route`, or says why not: 429 with the
    /// wait, or 400 for a cost larger than the bucket can ever hold.
    pub fn check(&self, user_id: &str, route: Route, cost: u32) -> Result<(), ApiError> {
        self.check_at(user_id, route, cost, Instant::now())
    }

    /// [`Self::check`] at a given time.
    pub fn check_at(
        &self,
        user_id: &str,
        route: Route,
        cost: u32,
        now: Instant,
    ) -> Result<(), ApiError> {
        let bucket_name = self.bucket(route);
        let limit = self.limit_of_bucket(bucket_name);
        if limit.per_second <= 0.0 {
            return Ok(());
        }
        if cost > limit.burst {
            return Err(ApiError::BadRequest(format!(
                "{cost} events at once exceed the rate limit's burst of {}",
                limit.burst
            )));
        }
        let mut state = self.state.lock().unwrap_or_else(|p| p.into_inner());
        state.checks += 1;
        if state.checks.is_multiple_of(SWEEP_EVERY) {
            // A bucket that has refilled completely is the same as no bucket: drop it, so
            // memory follows the active users, not every user ever seen.
            let full_after = |bucket: &str| {
                let limit = self.limit_of_bucket(bucket);
                Duration::from_secs_f64(f64::from(limit.burst) / limit.per_second.max(f64::EPSILON))
            };
            state.buckets.retain(|(_, name), bucket| {
                now.saturating_duration_since(bucket.at) < full_after(name)
            });
        }
        let bucket = state
            .buckets
            .entry((user_id.to_owned(), bucket_name))
            .or_insert(Bucket {
                tokens: f64::from(limit.burst),
                at: now,
            });
        let elapsed = now.saturating_duration_since(bucket.at).as_secs_f64();
        bucket.tokens = (bucket.tokens + elapsed * limit.per_second).min(f64::from(limit.burst));
        bucket.at = now;
        let cost = f64::from(cost);
        if bucket.tokens >= cost {
            bucket.tokens -= cost;
            return Ok(());
        }
        let wait = (cost - bucket.tokens) / limit.per_second;
        Err(ApiError::TooManyRequests {
            retry_after_secs: (wait.ceil() as u64).max(1),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limiter(per_second: f64, burst: u32) -> RateLimiter {
        RateLimiter::new(RateLimitSettings {
            events: Limit { per_second, burst },
            media: Limit::default(),
            routes: HashMap::new(),
        })
    }

    fn retry_after(result: Result<(), ApiError>) -> Option<u64> {
        match result {
            Err(ApiError::TooManyRequests { retry_after_secs }) => Some(retry_after_secs),
            _ => None,
        }
    }

    #[test]
    fn a_burst_passes_then_requests_wait_for_the_refill() {
        let limits = limiter(2.0, 3);
        let t0 = Instant::now();
        for _ in 0..3 {
            assert!(limits.check_at("u", Route::PublishEvent, 1, t0).is_ok());
        }
        assert_eq!(
            retry_after(limits.check_at("u", Route::PublishEvent, 1, t0)),
            Some(1)
        );
        // Half a second refills one token at 2/s.
        let later = t0 + Duration::from_millis(500);
        assert!(limits.check_at("u", Route::PublishEvent, 1, later).is_ok());
        assert!(retry_after(limits.check_at("u", Route::PublishEvent, 1, later)).is_some());
    }

    #[test]
    fn users_and_classes_have_buckets_of_their_own() {
        let limits = limiter(1.0, 1);
        let t0 = Instant::now();
        assert!(limits.check_at("u", Route::PublishEvent, 1, t0).is_ok());
        assert!(limits.check_at("u", Route::PublishEvent, 1, t0).is_err());
        assert!(
            limits.check_at("v", Route::PublishEvent, 1, t0).is_ok(),
            "another user"
        );
        assert!(
            limits.check_at("u", Route::DeleteIntent, 1, t0).is_ok(),
            "media is unlimited here"
        );
    }

    #[test]
    fn a_batch_costs_one_token_per_event_and_says_how_long_to_wait() {
        let limits = limiter(10.0, 100);
        let t0 = Instant::now();
        assert!(limits.check_at("u", Route::PublishEvent, 100, t0).is_ok());
        // 50 tokens at 10/s: 5 s.
        assert_eq!(
            retry_after(limits.check_at("u", Route::PublishEvent, 50, t0)),
            Some(5)
        );
        assert!(matches!(
            limits.check_at("u", Route::PublishEvent, 101, t0),
            Err(ApiError::BadRequest(_))
        ));
    }

    #[test]
    fn a_route_with_a_limit_of_its_own_has_its_own_bucket() {
        let limits = RateLimiter::new(RateLimitSettings {
            events: Limit {
                per_second: 1.0,
                burst: 1,
            },
            media: Limit::default(),
            routes: HashMap::from([(
                "publish_batch".to_owned(),
                Limit {
                    per_second: 1.0,
                    burst: 10,
                },
            )]),
        });
        let t0 = Instant::now();
        assert!(limits.check_at("u", Route::PublishEvent, 1, t0).is_ok());
        assert!(limits.check_at("u", Route::PublishEvent, 1, t0).is_err());
        assert!(
            limits.check_at("u", Route::PublishBatch, 10, t0).is_ok(),
            "not the events bucket"
        );
        assert!(limits.check_at("u", Route::PublishBatch, 1, t0).is_err());
    }

    #[test]
    fn unknown_route_names_are_refused() {
        let mut settings = RateLimitSettings::default();
        assert!(settings.validate().is_ok());
        settings
            .routes
            .insert("publish_evnt".into(), Limit::default());
        let refused = settings.validate().err().unwrap_or_default();
        assert!(
            refused.contains("publish_evnt") && refused.contains("publish_event"),
            "{refused}"
        );
    }

    #[test]
    fn idle_buckets_are_dropped() {
        let limits = limiter(1000.0, 1);
        let t0 = Instant::now();
        for i in 0..SWEEP_EVERY {
            assert!(
                limits
                    .check_at(&format!("user-{i}"), Route::PublishEvent, 1, t0)
                    .is_ok()
            );
        }
        let later = t0 + Duration::from_secs(1);
        for _ in 0..SWEEP_EVERY {
            assert!(
                limits
                    .check_at("active", Route::PublishEvent, 0, later)
                    .is_ok()
            );
        }
        let kept = limits
            .state
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .buckets
            .len();
        assert!(kept <= 2, "{kept} buckets kept");
    }
}
