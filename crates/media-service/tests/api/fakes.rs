//! The shared recording fakes (substrate's `testing`) wired into the handlers' dependencies.

use std::sync::Arc;

use media_service::announced::Announced;
use media_service::configuration::{MediaSettings, Topics};
use media_service::deps::Deps;
use serde_json::{Map, Value};

pub use substrate::testing::{
    OpLog, RecordingMediaFiles as FakeFiles, RecordingObjectStore as FakeStorage,
    RecordingSink as FakeSink, SinkMode, lock,
};

/// Adds `user`'s active video at `path` (the sagas' tests only care about path and size).
pub fn insert_video(files: &FakeFiles, user: &str, path: &str, size: i64) {
    files.insert(user, path, "video.mp4", "video/mp4", size);
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
