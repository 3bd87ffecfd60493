//! The topic allowlist (`routes.yaml`) and its hot reload.
//!
//! Clients never name a topic: `/webhooks/{key}` resolves only through `webhookRoutes` and
//! `/api/v1/events/{key}` only through `externalRoutes`. Keys are case-insensitive; topics are
//! used verbatim. The allowlist is live data, not startup config: the file's **directory** is
//! watched (Kubernetes swaps ConfigMap contents through a `..data` symlink, which a watch on
//! the file itself never sees), a changed file is re-read, and a file that fails to parse leaves
//! the last good table in force. Requests always see one consistent table.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use async_trait::async_trait;
use notify::{RecursiveMode, Watcher};
use serde::Deserialize;
use substrate::health::ReadinessCheck;
use tokio_util::sync::CancellationToken;

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RoutesFile {
    #[serde(rename = "webhookRoutes", default)]
    webhook_routes: HashMap<String, String>,
    #[serde(rename = "externalRoutes", default)]
    external_routes: HashMap<String, String>,
}

/// One consistent version of both maps.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct RouteTable {
    webhook: HashMap<String, String>,
    external: HashMap<String, String>,
}

impl RouteTable {
    /// Parses the YAML text; keys are lowercased, empty topics rejected.
    pub fn parse(text: &str) -> Result<Self, String> {
        let file: RoutesFile = if text.trim().is_empty() {
            RoutesFile::default()
        } else {
            serde_yaml::from_str(text).map_err(|e| e.to_string())?
        };
        // Keys are matched trimmed and case-insensitively, so two keys that only differ in case
        // or surrounding spaces are one route: refused, or which topic wins would depend on the
        // order the map happens to be walked in (found by the routes property test).
        let normalise = |map: HashMap<String, String>, section: &str| {
            let mut table = HashMap::with_capacity(map.len());
            let mut originals: HashMap<String, String> = HashMap::with_capacity(map.len());
            for (key, topic) in map {
                let topic = topic.trim().to_owned();
                if key.trim().is_empty() || topic.is_empty() {
                    return Err(format!("{section}: empty key or topic for {key:?}"));
                }
                let normalised = key.trim().to_lowercase();
                if let Some(other) = originals.insert(normalised.clone(), key.clone()) {
                    let (a, b) = if other < key {
                        (other, key)
                    } else {
                        (key, other)
                    };
                    return Err(format!(
                        "{section}: keys {a:?} and {b:?} name the same route (keys are matched trimmed and case-insensitively)"
                    ));
                }
                table.insert(normalised, topic);
            }
            Ok(table)
        };
        Ok(Self {
            webhook: normalise(file.webhook_routes, "webhookRoutes")?,
            external: normalise(file.external_routes, "externalRoutes")?,
        })
    }

    /// Topic for a webhook route key.
    pub fn webhook_topic(&self, key: &str) -> Option<&str> {
        self.webhook.get(&key.to_lowercase()).map(String::as_str)
    }

    /// Topic for an external (frontend) route key.
    pub fn external_topic(&self, key: &str) -> Option<&str> {
        self.external.get(&key.to_lowercase()).map(String::as_str)
    }

    /// The webhook route keys, sorted.
    pub fn webhook_keys(&self) -> Vec<String> {
        sorted_keys(&self.webhook)
    }

    /// The external route keys, sorted.
    pub fn external_keys(&self) -> Vec<String> {
        sorted_keys(&self.external)
    }

    /// (webhook, external) entry counts.
    pub fn counts(&self) -> (usize, usize) {
        (self.webhook.len(), self.external.len())
    }
}

fn sorted_keys(map: &HashMap<String, String>) -> Vec<String> {
    let mut keys: Vec<String> = map.keys().cloned().collect();
    keys.sort();
    keys
}

/// Shared handle to the current table.
#[derive(Debug, Clone, Default)]
pub struct Routes {
    table: Arc<RwLock<Arc<RouteTable>>>,
    last_text: Arc<RwLock<Option<String>>>,
    loaded: Arc<AtomicBool>,
}

impl Routes {
    /// A handle serving `table` (tests and fixed configurations).
    pub fn fixed(table: RouteTable) -> Self {
        let routes = Self::default();
        *routes.table.write().unwrap_or_else(|p| p.into_inner()) = Arc::new(table);
        routes.loaded.store(true, Ordering::SeqCst);
        routes
    }

    /// Loads `path` once. A missing or invalid file leaves an empty table (every event route
    /// answers 403) and readiness reports not ready until a valid file appears.
    pub fn load(path: &Path) -> Self {
        let routes = Self::default();
        routes.reload(path);
        routes
    }

    /// The table in force.
    pub fn current(&self) -> Arc<RouteTable> {
        self.table.read().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// Whether a valid file was loaded at least once.
    pub fn is_loaded(&self) -> bool {
        self.loaded.load(Ordering::SeqCst)
    }

    /// Re-reads `path`; replaces the table only when the content changed and parses.
    pub fn reload(&self, path: &Path) {
        let text = match std::fs::read_to_string(path) {
            Ok(text) => text,
            Err(error) => {
                tracing::warn!(file = %path.display(), %error, "routes file unreadable; keeping the current routes");
                return;
            }
        };
        if self
            .last_text
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .as_deref()
            == Some(text.as_str())
        {
            return;
        }
        match RouteTable::parse(&text) {
            Ok(table) => {
                let (webhook_topics, external_topics) = table.counts();
                *self.table.write().unwrap_or_else(|p| p.into_inner()) = Arc::new(table);
                *self.last_text.write().unwrap_or_else(|p| p.into_inner()) = Some(text);
                self.loaded.store(true, Ordering::SeqCst);
                tracing::info!(file = %path.display(), webhook_topics, external_topics, "routes loaded");
            }
            Err(error) => {
                tracing::error!(file = %path.display(), %error, "routes file invalid; keeping the last good routes");
            }
        }
    }

    /// Watches the file's directory and reloads on any change until `shutdown`.
    pub fn watch(&self, path: PathBuf, shutdown: CancellationToken) -> Result<(), notify::Error> {
        let directory = path
            .parent()
            .filter(|p| !p.as_os_str().is_empty())
            .map_or_else(|| PathBuf::from("."), Path::to_path_buf);
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
        let mut watcher =
            notify::recommended_watcher(move |event: notify::Result<notify::Event>| {
                // Any event in the directory may be the ConfigMap swap; reload compares contents.
                if event.is_ok() {
                    let _ = tx.send(());
                }
            })?;
        watcher.watch(&directory, RecursiveMode::NonRecursive)?;
        let routes = self.clone();
        tokio::spawn(async move {
            // The watcher stops when dropped, so this task owns it.
            let _watcher = watcher;
            loop {
                tokio::select! {
                    () = shutdown.cancelled() => return,
                    event = rx.recv() => {
                        if event.is_none() {
                            return;
                        }
                        // Editors and kubelet write in several steps; let them finish.
                        tokio::time::sleep(Duration::from_millis(100)).await;
                        while rx.try_recv().is_ok() {}
                        routes.reload(&path);
                    }
                }
            }
        });
        Ok(())
    }
}

/// Ready once a valid routes file was loaded.
#[derive(Debug)]
pub struct RoutesCheck(pub Routes);

#[async_trait]
impl ReadinessCheck for RoutesCheck {
    fn name(&self) -> &'static str {
        "routes"
    }

    async fn check(&self) -> Result<(), String> {
        if self.0.is_loaded() {
            Ok(())
        } else {
            Err("no valid routes file loaded".into())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_case_insensitive_and_maps_are_separate() {
        let table = RouteTable::parse(
            "webhookRoutes:\n  Login: public.identity.login.events\n  user.v2: t.v2\nexternalRoutes:\n  message: public.user.message.events\n",
        )
        .unwrap();
        assert_eq!(
            table.webhook_topic("LOGIN"),
            Some("public.identity.login.events")
        );
        assert_eq!(
            table.webhook_topic("user.v2"),
            Some("t.v2"),
            "keys with dots work"
        );
        assert_eq!(
            table.external_topic("login"),
            None,
            "webhook keys are not external keys"
        );
        assert_eq!(table.webhook_topic("message"), None);
        assert_eq!(table.counts(), (2, 1));
    }

    #[test]
    fn invalid_files_are_rejected() {
        for text in [
            "webhookRoutes: [not, a, map]",
            "webhookRoutes:\n  login: \"\"\n",
            "unknownSection: {}\n",
            // one route under two spellings: which topic wins would be a coin toss
            "externalRoutes:\n  Message: a.topic\n  message : b.topic\n",
        ] {
            assert!(RouteTable::parse(text).is_err(), "{text}");
        }
        assert_eq!(RouteTable::parse("").map(|t| t.counts()), Ok((0, 0)));
    }

    #[test]
    fn a_bad_reload_keeps_the_last_good_table() {
        let dir = std::env::temp_dir().join(format!("routes-{}", uuid::Uuid::new_v4()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("routes.yaml");
        std::fs::write(&file, "externalRoutes:\n  message: topic.a\n").unwrap();
        let routes = Routes::load(&file);
        assert!(routes.is_loaded());
        std::fs::write(&file, "externalRoutes: [broken").unwrap();
        routes.reload(&file);
        assert_eq!(routes.current().external_topic("message"), Some("topic.a"));
        std::fs::write(&file, "externalRoutes:\n  message: topic.b\n").unwrap();
        routes.reload(&file);
        assert_eq!(routes.current().external_topic("message"), Some("topic.b"));
    }

    #[test]
    fn a_missing_file_means_no_routes_and_not_loaded() {
        let routes = Routes::load(Path::new("/nonexistent/routes.yaml"));
        assert!(!routes.is_loaded());
        assert_eq!(routes.current().counts(), (0, 0));
    }

    #[test]
    fn the_shipped_allowlist_is_the_default_and_routes_the_platform_topics() {
        // The crate's config/ (the image sets APP_CONFIG_DIR=/app/config, which holds the same file).
        let path = crate::configuration::GatewaySettings::default().routes_path();
        assert!(path.ends_with("config/routes.yaml"), "{}", path.display());
        let routes = Routes::load(&path);
        assert!(routes.is_loaded(), "{}", path.display());
        let table = routes.current();
        assert_eq!(
            table.webhook_topic("signup"),
            Some("public.identity.signup.events")
        );
        assert_eq!(
            table.external_topic("message"),
            Some("public.user.message.events")
        );
    }
}
