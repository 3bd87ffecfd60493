//! Recording fakes for the media-service's edges.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use media_service::announced::Announced;
use media_service::configuration::{MediaSettings, Topics};
use media_service::edges::{
    DbError, EventSink, FileRow, MediaFiles, Moved, ObjectStore, SinkError, StorageError,
};
use media_service::handlers::Deps;
use serde_json::{Map, Value};

pub fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// Everything the fakes did, in order, across all of them.
pub type OpLog = Arc<Mutex<Vec<String>>>;

#[derive(Debug, Default)]
pub struct FakeSink {
    pub sent: Mutex<Vec<(String, Value)>>,
    pub fail: Mutex<bool>,
    pub log: OpLog,
}

impl FakeSink {
    pub fn events(&self) -> Vec<(String, Value)> {
        lock(&self.sent).clone()
    }
}

#[async_trait]
impl EventSink for FakeSink {
    async fn send_event(
        &self,
        topic: &str,
        document: &Value,
        _event_id: &str,
    ) -> Result<(), SinkError> {
        if *lock(&self.fail) {
            return Err(SinkError::Unavailable("fake broker down".into()));
        }
        lock(&self.log).push(format!("produce {topic}"));
        lock(&self.sent).push((topic.to_owned(), document.clone()));
        Ok(())
    }
}

/// (method, key, bound content type, expiry) of one presigning call.
pub type Presigned = (String, String, Option<String>, Duration);

#[derive(Debug, Default)]
pub struct FakeStorage {
    pub presigned: Mutex<Vec<Presigned>>,
    pub removed: Mutex<Vec<String>>,
    pub moved: Mutex<Vec<(String, String)>>,
    pub fail_presign: Mutex<bool>,
    pub fail_remove: Mutex<bool>,
    /// Removals are refused for good (403), not failing for a while.
    pub refuse_remove: Mutex<bool>,
    pub move_result: Mutex<Option<StorageError>>,
    /// Makes a successful move report that the destination already held the object.
    pub already_moved: Mutex<bool>,
    pub log: OpLog,
}

#[async_trait]
impl ObjectStore for FakeStorage {
    async fn presign_put(
        &self,
        key: &str,
        content_type: &str,
        expires_in: Duration,
    ) -> Result<String, StorageError> {
        // Presigning is local: it only fails on a setting out of range, for good.
        if *lock(&self.fail_presign) {
            return Err(StorageError::Refused("expiry out of range".into()));
        }
        lock(&self.presigned).push((
            "PUT".into(),
            key.into(),
            Some(content_type.into()),
            expires_in,
        ));
        Ok(format!("http://objects.test/media-uploads/{key}?sig=put"))
    }
    async fn presign_get(&self, key: &str, expires_in: Duration) -> Result<String, StorageError> {
        if *lock(&self.fail_presign) {
            return Err(StorageError::Refused("expiry out of range".into()));
        }
        lock(&self.presigned).push(("GET".into(), key.into(), None, expires_in));
        Ok(format!("http://objects.test/media-uploads/{key}?sig=get"))
    }
    async fn remove(&self, key: &str) -> Result<(), StorageError> {
        lock(&self.log).push(format!("remove {key}"));
        if *lock(&self.fail_remove) {
            return Err(StorageError::Failed("connection refused".into()));
        }
        if *lock(&self.refuse_remove) {
            return Err(StorageError::Refused("AccessDenied (403)".into()));
        }
        lock(&self.removed).push(key.into());
        Ok(())
    }
    async fn move_object(&self, from: &str, to: &str) -> Result<Moved, StorageError> {
        lock(&self.moved).push((from.into(), to.into()));
        match lock(&self.move_result).clone() {
            Some(error) => Err(error),
            None if *lock(&self.already_moved) => Ok(Moved::AlreadyMoved),
            None => Ok(Moved::Copied),
        }
    }
}

#[derive(Debug, Default)]
pub struct FakeFiles {
    pub rows: Mutex<HashMap<(String, String), FileRow>>,
    pub fail_lookup: Mutex<bool>,
    pub fail_soft_delete: Mutex<bool>,
    /// The update violates a constraint (refused for good).
    pub refuse_soft_delete: Mutex<bool>,
    pub lookups: Mutex<Vec<(String, String)>>,
    pub log: OpLog,
}

impl FakeFiles {
    pub fn insert(&self, user: &str, path: &str, size: i64) {
        lock(&self.rows).insert(
            (user.into(), path.into()),
            FileRow {
                file_name: "video.mp4".into(),
                media_type: "video/mp4".into(),
                file_size: size,
                status: "active".into(),
                deleted_by_request_id: None,
            },
        );
    }
    pub fn status(&self, user: &str, path: &str) -> Option<String> {
        lock(&self.rows)
            .get(&(user.into(), path.into()))
            .map(|r| r.status.clone())
    }
}

#[async_trait]
impl MediaFiles for FakeFiles {
    async fn lookup(&self, user_id: &str, file_path: &str) -> Result<Option<FileRow>, DbError> {
        lock(&self.lookups).push((user_id.into(), file_path.into()));
        if *lock(&self.fail_lookup) {
            return Err(DbError::unavailable("connection refused"));
        }
        Ok(lock(&self.rows)
            .get(&(user_id.into(), file_path.into()))
            .cloned())
    }
    async fn soft_delete(
        &self,
        user_id: &str,
        file_path: &str,
        request_id: &str,
    ) -> Result<bool, DbError> {
        if *lock(&self.fail_soft_delete) {
            return Err(DbError::unavailable("deadlock"));
        }
        if *lock(&self.refuse_soft_delete) {
            return Err(DbError {
                message: "violates check constraint".into(),
                permanent: true,
            });
        }
        lock(&self.log).push(format!("soft_delete {file_path}"));
        let mut rows = lock(&self.rows);
        match rows.get_mut(&(user_id.into(), file_path.into())) {
            Some(row) if row.status == "active" => {
                row.status = "deleted".into();
                row.deleted_by_request_id = Some(request_id.into());
                Ok(true)
            }
            _ => Ok(false),
        }
    }
}

pub struct Kit {
    pub sink: Arc<FakeSink>,
    pub storage: Arc<FakeStorage>,
    pub files: Arc<FakeFiles>,
    pub log: OpLog,
    pub deps: Deps,
}

impl Kit {
    pub fn new() -> Self {
        Self::with(MediaSettings {
            delete_retry_base_delay_ms: 0,
            ..MediaSettings::default()
        })
    }

    pub fn with(media: MediaSettings) -> Self {
        Self::announcing(media, Announced::default())
    }

    /// A kit whose handlers see `announced` as published before the service started.
    pub fn announcing(media: MediaSettings, announced: Announced) -> Self {
        let log: OpLog = Arc::default();
        let sink = Arc::new(FakeSink {
            log: log.clone(),
            ..FakeSink::default()
        });
        let storage = Arc::new(FakeStorage {
            log: log.clone(),
            ..FakeStorage::default()
        });
        let files = Arc::new(FakeFiles {
            log: log.clone(),
            ..FakeFiles::default()
        });
        let deps = Deps {
            events: sink.clone(),
            storage: storage.clone(),
            files: files.clone(),
            topics: Arc::new(Topics::default()),
            media: Arc::new(media),
            announced: Arc::new(announced),
        };
        Self {
            sink,
            storage,
            files,
            log,
            deps,
        }
    }

    pub fn on(&self, topic: &str) -> Vec<Value> {
        self.sink
            .events()
            .into_iter()
            .filter(|(t, _)| t == topic)
            .map(|(_, v)| v)
            .collect()
    }
}

pub fn fields(value: Value) -> Map<String, Value> {
    value.as_object().cloned().unwrap_or_default()
}
