//! Recording fakes for the gateway's edge traits, and a router wired to them.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use api_gateway::auth::{JwtVerifier, WebhookSecret};
use api_gateway::configuration::AuthSettings;
use api_gateway::credits::{CreditLedger, CreditOutcome};
use api_gateway::error::StoreError;
use api_gateway::idempotency::{Claim, IdempotencyStore, Recorded, Scope};
use api_gateway::ratelimit::{Limit, RateLimitSettings, RateLimiter};
use api_gateway::routes_config::{RouteTable, Routes};
use api_gateway::state::AppState;
use async_trait::async_trait;
use axum::Router;
use secrecy::SecretString;
use substrate::health::Readiness;

pub const JWT_SECRET: &str = "test-jwt-secret-with-at-least-32-characters";
pub const WEBHOOK_SECRET: &str = "super-secret-webhook-key";
pub const ROUTES: &str = "webhookRoutes:\n  login: public.identity.login.events\n  signup: public.identity.signup.events\n  signout: public.identity.signout.events\nexternalRoutes:\n  message: public.user.message.events\n";

pub use substrate::testing::{
    RecordingMediaFiles as FakeFiles, RecordingObjectStore as FakeObjects,
    RecordingSink as FakeSink, SinkMode, lock,
};

/// The credit ledger in memory: balances by user, and every deduction.
#[derive(Debug, Default)]
pub struct FakeCredits {
    pub balances: Mutex<HashMap<String, i64>>,
    pub deductions: Mutex<Vec<(String, String)>>,
    /// The database is unreachable.
    pub fail: Mutex<bool>,
}

impl FakeCredits {
    pub fn with_balance(self, user: &str, balance: i64) -> Self {
        lock(&self.balances).insert(user.to_owned(), balance);
        self
    }
}

#[async_trait]
impl CreditLedger for FakeCredits {
    async fn deduct_upload_credit(
        &self,
        user_id: &str,
        file_name: &str,
        _request_id: &str,
    ) -> Result<CreditOutcome, StoreError> {
        if *lock(&self.fail) {
            return Err(StoreError::new("credit deduction", "connection refused"));
        }
        let mut balances = lock(&self.balances);
        let balance = balances.entry(user_id.to_owned()).or_insert(0);
        if *balance <= 0 {
            return Ok(CreditOutcome::Insufficient);
        }
        *balance -= 1;
        lock(&self.deductions).push((user_id.to_owned(), file_name.to_owned()));
        Ok(CreditOutcome::Deducted)
    }
}

pub type KeyEntry = (String, i64, Option<Recorded>);

/// Keys in memory, with the store's rules (no window: a test never outlives one).
#[derive(Debug, Default)]
pub struct FakeKeys {
    /// (fingerprint, first_used, answer) by (user, route, key).
    pub keys: Mutex<HashMap<(String, String, String), KeyEntry>>,
    pub unavailable: Mutex<bool>,
    next_use: Mutex<i64>,
}

#[async_trait]
impl IdempotencyStore for FakeKeys {
    async fn claim(&self, scope: &Scope, fingerprint: &str) -> Result<Claim, StoreError> {
        if *lock(&self.unavailable) {
            return Err(StoreError::new("idempotency key", "connection refused"));
        }
        let id = (
            scope.user_id.clone(),
            scope.route.clone(),
            scope.key.clone(),
        );
        let mut keys = lock(&self.keys);
        Ok(match keys.get(&id) {
            None => {
                let mut next = lock(&self.next_use);
                *next += 1;
                keys.insert(id, (fingerprint.to_owned(), *next, None));
                Claim::Run { first_used: *next }
            }
            Some((stored, _, _)) if stored != fingerprint => Claim::Mismatch,
            Some((_, _, Some(answer))) => Claim::Replay(answer.clone()),
            Some((_, _, None)) => Claim::InProgress,
        })
    }
    async fn record(
        &self,
        scope: &Scope,
        first_used: i64,
        answer: &Recorded,
    ) -> Result<(), StoreError> {
        let id = (
            scope.user_id.clone(),
            scope.route.clone(),
            scope.key.clone(),
        );
        if let Some(entry) = lock(&self.keys).get_mut(&id)
            && entry.1 == first_used
        {
            entry.2 = Some(answer.clone());
        }
        Ok(())
    }
    async fn release(&self, scope: &Scope, first_used: i64) -> Result<(), StoreError> {
        let id = (
            scope.user_id.clone(),
            scope.route.clone(),
            scope.key.clone(),
        );
        let mut keys = lock(&self.keys);
        if keys
            .get(&id)
            .is_some_and(|e| e.1 == first_used && e.2.is_none())
        {
            keys.remove(&id);
        }
        Ok(())
    }
    async fn sweep(&self) -> Result<u64, StoreError> {
        Ok(0)
    }
}

/// A gateway router over fakes, plus handles to inspect them.
pub struct Harness {
    pub sink: Arc<FakeSink>,
    pub keys: Arc<FakeKeys>,
    pub credits: Arc<FakeCredits>,
    pub files: Arc<FakeFiles>,
    pub objects: Arc<FakeObjects>,
    pub router: Router,
}

pub struct Options {
    pub jwt_secret: Option<&'static str>,
    pub webhook_secret: Option<&'static str>,
    pub expiry_secs: u64,
    pub credits: FakeCredits,
    pub rate_limits: RateLimitSettings,
    pub batch_max_events: usize,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            jwt_secret: Some(JWT_SECRET),
            webhook_secret: Some(WEBHOOK_SECRET),
            expiry_secs: 900,
            credits: FakeCredits::default(),
            // Off: only the tests about limits set them.
            rate_limits: RateLimitSettings {
                events: Limit::default(),
                media: Limit::default(),
                routes: HashMap::new(),
            },
            batch_max_events: 100,
        }
    }
}

impl Harness {
    pub fn new(options: Options) -> Self {
        let sink = Arc::new(FakeSink::default());
        let credits = Arc::new(options.credits);
        let files = Arc::new(FakeFiles::default());
        let keys = Arc::new(FakeKeys::default());
        let objects = Arc::new(FakeObjects::default());
        let auth = AuthSettings {
            jwt_secret: options.jwt_secret.map(SecretString::from),
            ..AuthSettings::default()
        };
        let state = AppState {
            jwt: Arc::new(JwtVerifier::new(&auth).unwrap()),
            webhook_secret: WebhookSecret(
                options
                    .webhook_secret
                    .map(|s| Arc::new(SecretString::from(s))),
            ),
            routes: Routes::fixed(RouteTable::parse(ROUTES).unwrap()),
            events: sink.clone(),
            credits: credits.clone(),
            files: files.clone(),
            objects: objects.clone(),
            presign_expiry: Duration::from_secs(options.expiry_secs),
            topics: Arc::new(api_gateway::configuration::Topics::default()),
            idempotency: keys.clone(),
            limits: Arc::new(RateLimiter::new(options.rate_limits)),
            batch_max_events: options.batch_max_events,
        };
        let router = api_gateway::routes::router(
            state,
            substrate::health::router(Readiness::new("not_ready")),
            1024 * 1024,
            &substrate::config::HttpSettings::default(),
        );
        Self {
            sink,
            keys,
            credits,
            files,
            objects,
            router,
        }
    }

    pub fn sink_mode(&self, mode: SinkMode) {
        self.sink.set_mode(mode);
    }
}
