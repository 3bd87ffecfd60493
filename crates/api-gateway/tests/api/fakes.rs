//! Recording fakes for the gateway's edge traits, and a router wired to them.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use api_gateway::auth::JwtVerifier;
use api_gateway::configuration::AuthSettings;
use api_gateway::edges::{
    CreditOutcome, EventSink, FileRecord, MediaStore, ObjectStore, SinkError, StorageError,
    StoreError,
};
use api_gateway::idempotency::{Claim, IdempotencyStore, Recorded, Scope};
use api_gateway::ratelimit::{Limit, RateLimitSettings, RateLimiter};
use api_gateway::routes_config::{RouteTable, Routes};
use api_gateway::state::AppState;
use async_trait::async_trait;
use axum::Router;
use secrecy::SecretString;
use serde_json::Value;
use substrate::health::Readiness;

pub const JWT_SECRET: &str = "test-jwt-secret-with-at-least-32-characters";
pub const WEBHOOK_SECRET: &str = "super-secret-webhook-key";
pub const ROUTES: &str = "webhookRoutes:\n  login: public.identity.login.events\n  signup: public.identity.signup.events\n  signout: public.identity.signout.events\nexternalRoutes:\n  message: public.user.message.events\n";

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SinkMode {
    Accept,
    Unavailable,
    SchemaViolation,
    UnknownSubject,
}

#[derive(Debug)]
pub struct FakeSink {
    pub sent: Mutex<Vec<(String, Value)>>,
    /// The `ce_id` of each accepted event, in order.
    pub ids: Mutex<Vec<String>>,
    pub mode: Mutex<SinkMode>,
}

impl FakeSink {
    pub fn events(&self) -> Vec<(String, Value)> {
        lock(&self.sent).clone()
    }
    pub fn on(&self, topic: &str) -> Vec<Value> {
        self.events()
            .into_iter()
            .filter(|(t, _)| t == topic)
            .map(|(_, v)| v)
            .collect()
    }
}

#[async_trait]
impl EventSink for FakeSink {
    async fn send_event(
        &self,
        topic: &str,
        document: &Value,
        event_id: &str,
    ) -> Result<(), SinkError> {
        match *lock(&self.mode) {
            SinkMode::Accept => {
                lock(&self.sent).push((topic.to_owned(), document.clone()));
                lock(&self.ids).push(event_id.to_owned());
                Ok(())
            }
            SinkMode::Unavailable => Err(SinkError::Unavailable("fake broker down".into())),
            SinkMode::SchemaViolation => Err(SinkError::Schema(
                "field `user_id`: required field is missing".into(),
            )),
            SinkMode::UnknownSubject => Err(SinkError::UnknownSubject(topic.to_owned())),
        }
    }
}

#[derive(Debug, Default)]
pub struct FakeMedia {
    pub balances: Mutex<HashMap<String, i64>>,
    pub files: Mutex<Vec<(String, FileRecord, bool)>>,
    pub fail_reads: Mutex<bool>,
    pub fail_soft_delete: Mutex<bool>,
    pub deductions: Mutex<Vec<(String, String)>>,
}

impl FakeMedia {
    pub fn with_balance(self, user: &str, balance: i64) -> Self {
        lock(&self.balances).insert(user.to_owned(), balance);
        self
    }
    pub fn with_file(self, user: &str, path: &str) -> Self {
        lock(&self.files).push((
            user.to_owned(),
            FileRecord {
                file_path: path.to_owned(),
                file_name: "photo.jpg".into(),
                media_type: "image/jpeg".into(),
                file_size: 999_999,
            },
            true,
        ));
        self
    }
    pub fn active(&self, user: &str, path: &str) -> bool {
        lock(&self.files)
            .iter()
            .any(|(u, f, active)| u == user && f.file_path == path && *active)
    }
}

#[async_trait]
impl MediaStore for FakeMedia {
    async fn deduct_upload_credit(
        &self,
        user_id: &str,
        file_name: &str,
        _request_id: &str,
    ) -> Result<CreditOutcome, StoreError> {
        if *lock(&self.fail_reads) {
            return Err(StoreError("connection refused".into()));
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

    async fn active_file(
        &self,
        user_id: &str,
        file_path: &str,
    ) -> Result<Option<FileRecord>, StoreError> {
        if *lock(&self.fail_reads) {
            return Err(StoreError("connection refused".into()));
        }
        Ok(lock(&self.files)
            .iter()
            .find(|(u, f, active)| u == user_id && f.file_path == file_path && *active)
            .map(|(_, f, _)| f.clone()))
    }

    async fn soft_delete(&self, user_id: &str, file_path: &str) -> Result<bool, StoreError> {
        if *lock(&self.fail_soft_delete) {
            return Err(StoreError("deadlock detected".into()));
        }
        let mut changed = false;
        for (u, f, active) in lock(&self.files).iter_mut() {
            if u == user_id && f.file_path == file_path && *active {
                *active = false;
                changed = true;
            }
        }
        Ok(changed)
    }
}

#[derive(Debug, Default)]
pub struct FakeObjects {
    pub presigned: Mutex<Vec<(String, String, String, Duration)>>,
    pub removed: Mutex<Vec<(String, String)>>,
    pub content_types: Mutex<Vec<String>>,
    pub fail_presign: Mutex<bool>,
    pub fail_remove: Mutex<bool>,
}

impl FakeObjects {
    fn presign(
        &self,
        method: &str,
        bucket: &str,
        key: &str,
        expires: Duration,
    ) -> Result<String, StorageError> {
        if *lock(&self.fail_presign) {
            return Err(StorageError("signing failed".into()));
        }
        lock(&self.presigned).push((
            method.to_owned(),
            bucket.to_owned(),
            key.to_owned(),
            expires,
        ));
        Ok(format!(
            "http://objects.test/{bucket}/{key}?X-Amz-Signature=fake&method={method}"
        ))
    }
}

#[async_trait]
impl ObjectStore for FakeObjects {
    async fn presign_put(
        &self,
        bucket: &str,
        key: &str,
        content_type: &str,
        expires_in: Duration,
    ) -> Result<String, StorageError> {
        lock(&self.content_types).push(content_type.to_owned());
        self.presign("PUT", bucket, key, expires_in)
    }
    async fn presign_get(
        &self,
        bucket: &str,
        key: &str,
        expires_in: Duration,
    ) -> Result<String, StorageError> {
        self.presign("GET", bucket, key, expires_in)
    }
    async fn remove(&self, bucket: &str, key: &str) -> Result<(), StorageError> {
        if *lock(&self.fail_remove) {
            return Err(StorageError("no route to host".into()));
        }
        lock(&self.removed).push((bucket.to_owned(), key.to_owned()));
        Ok(())
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
            return Err(StoreError("connection refused".into()));
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
    pub media: Arc<FakeMedia>,
    pub objects: Arc<FakeObjects>,
    pub router: Router,
}

pub struct Options {
    pub jwt_secret: Option<&'static str>,
    pub webhook_secret: Option<&'static str>,
    pub bucket: &'static str,
    pub expiry_secs: u64,
    pub media: FakeMedia,
    pub rate_limits: RateLimitSettings,
    pub batch_max_events: usize,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            jwt_secret: Some(JWT_SECRET),
            webhook_secret: Some(WEBHOOK_SECRET),
            bucket: "media-uploads",
            expiry_secs: 900,
            media: FakeMedia::default(),
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
        let sink = Arc::new(FakeSink {
            sent: Mutex::default(),
            ids: Mutex::default(),
            mode: Mutex::new(SinkMode::Accept),
        });
        let media = Arc::new(options.media);
        let keys = Arc::new(FakeKeys::default());
        let objects = Arc::new(FakeObjects::default());
        let auth = AuthSettings {
            jwt_secret: options.jwt_secret.map(SecretString::from),
            ..AuthSettings::default()
        };
        let state = AppState {
            jwt: Arc::new(JwtVerifier::new(&auth).unwrap_or_else(|e| panic!("{e}"))),
            webhook_secret: options
                .webhook_secret
                .map(|s| Arc::new(SecretString::from(s))),
            routes: Routes::fixed(RouteTable::parse(ROUTES).unwrap_or_else(|e| panic!("{e}"))),
            events: sink.clone(),
            media: media.clone(),
            objects: objects.clone(),
            bucket: Arc::from(options.bucket),
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
            media,
            objects,
            router,
        }
    }

    pub fn sink_mode(&self, mode: SinkMode) {
        *lock(&self.sink.mode) = mode;
    }
}
