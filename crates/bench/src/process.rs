//! The services as the release binaries run them: a child process per service, configured
//! through a config directory of its own (its `base.yaml` plus a `bench.yaml` of overrides), so
//! start-up time and memory are the real process's, not a library call's.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use tokio::process::{Child, Command};

/// The directory of the running bench binary, where cargo put the service binaries too.
pub fn binary_dir() -> anyhow::Result<PathBuf> {
    let exe = std::env::current_exe()?;
    exe.parent()
        .map(Path::to_path_buf)
        .context("the bench binary has no directory")
}

/// Repository root (the bench reads the services' `config/base.yaml` from it).
pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// A free TCP port on 127.0.0.1 (bound and released; nothing else races for ports here).
pub fn free_port() -> anyhow::Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port())
}

/// A running service binary.
pub struct Service {
    /// Binary name.
    pub name: &'static str,
    /// HTTP port.
    pub port: u16,
    child: Child,
    /// Time from spawn to the first `GET /readyz` answered 200.
    pub ready_after: Duration,
    _config: Option<tempdir::Dir>,
}

mod tempdir {
    /// A directory removed on drop.
    pub struct Dir(pub std::path::PathBuf);

    impl Drop for Dir {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }
}

impl Service {
    /// Starts `name` with `overrides` (YAML merged over its `base.yaml`; `http` is set here) and
    /// waits until `/readyz` answers 200, polling every 2 ms.
    pub async fn start(
        name: &'static str,
        overrides: &str,
        env: &[(&str, &str)],
    ) -> anyhow::Result<Self> {
        let port = free_port()?;
        let dir = std::env::temp_dir().join(substrate::testing::unique("bench-config"));
        std::fs::create_dir_all(&dir)?;
        let config = tempdir::Dir(dir.clone());
        std::fs::copy(
            repo_root()
                .join("crates")
                .join(name)
                .join("config/base.yaml"),
            dir.join("base.yaml"),
        )
        .with_context(|| format!("copying {name}'s base.yaml"))?;
        std::fs::write(
            dir.join("bench.yaml"),
            format!("http:\n  host: \"127.0.0.1\"\n  port: {port}\n{overrides}"),
        )?;
        let binary = binary_dir()?.join(name);
        let mut command = Command::new(&binary);
        command
            .env("APP_CONFIG_DIR", &dir)
            .env("APP_ENVIRONMENT", "bench");
        for (key, value) in env {
            command.env(key, value);
        }
        Self::spawn(name, command, port, Some(config)).await
    }

    /// The bench binary's own `bare-server` on a free port (see `bare.rs`).
    pub async fn bare(topic: Option<&str>) -> anyhow::Result<Self> {
        let port = free_port()?;
        let mut command = Command::new(std::env::current_exe()?);
        command.arg("bare-server").arg(port.to_string());
        command.args(topic);
        Self::spawn("bare-server", command, port, None).await
    }

    async fn spawn(
        name: &'static str,
        mut command: Command,
        port: u16,
        config: Option<tempdir::Dir>,
    ) -> anyhow::Result<Self> {
        command
            .env("NO_COLOR", "1")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .kill_on_drop(true);
        let client = reqwest::Client::builder()
            .timeout(Duration::from_millis(500))
            .build()?;
        let url = format!("http://127.0.0.1:{port}/readyz");
        let started = Instant::now();
        let mut child = command
            .spawn()
            .with_context(|| format!("starting {name}"))?;
        loop {
            if let Ok(response) = client.get(&url).send().await
                && response.status() == 200
            {
                break;
            }
            if let Some(status) = child.try_wait()? {
                bail!("{name} exited with {status} before it was ready");
            }
            if started.elapsed() > Duration::from_secs(60) {
                bail!("{name} was not ready within 60 s");
            }
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
        Ok(Self {
            name,
            port,
            ready_after: started.elapsed(),
            child,
            _config: config,
        })
    }

    /// Resident memory now and its peak so far, in MiB (`VmRSS`, `VmHWM` of /proc/<pid>/status).
    pub fn memory(&self) -> anyhow::Result<Memory> {
        let pid = self
            .child
            .id()
            .with_context(|| format!("{} has exited", self.name))?;
        Memory::of(pid)
    }

    /// With `BENCH_PERF=<dir>`, samples this process with `perf record -g` into
    /// `<dir>/<label>.perf` until the returned guard is finished; otherwise does nothing.
    pub fn profile(&self, label: &str) -> anyhow::Result<Profile> {
        let Some(dir) = std::env::var_os("BENCH_PERF") else {
            return Ok(Profile(None));
        };
        let pid = self.child.id().context("no pid")?;
        std::fs::create_dir_all(&dir)?;
        let output = Path::new(&dir).join(format!("{label}.perf"));
        let child = std::process::Command::new("perf")
            .args(["record", "-F", "999", "-g", "-p", &pid.to_string(), "-o"])
            .arg(&output)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .context("perf record (BENCH_PERF is set)")?;
        eprintln!("profiling {} into {}", self.name, output.display());
        Ok(Profile(Some(child)))
    }

    /// SIGTERM, then waits for the process to finish its graceful shutdown.
    pub async fn stop(mut self) -> anyhow::Result<()> {
        if let Some(pid) = self.child.id() {
            // tokio's Child can only SIGKILL; graceful shutdown is what a deployment does.
            let _ = std::process::Command::new("kill")
                .arg("-TERM")
                .arg(pid.to_string())
                .status();
        }
        match tokio::time::timeout(Duration::from_secs(30), self.child.wait()).await {
            Ok(status) => {
                status?;
            }
            Err(_) => self.child.kill().await?,
        }
        Ok(())
    }
}

/// A running `perf record`, stopped (SIGINT, so it writes its file) by [`Profile::finish`].
pub struct Profile(Option<std::process::Child>);

impl Profile {
    /// Stops the sampling and waits for perf to write its file.
    pub fn finish(self) -> anyhow::Result<()> {
        if let Some(mut child) = self.0 {
            std::process::Command::new("kill")
                .arg("-INT")
                .arg(child.id().to_string())
                .status()?;
            child.wait()?;
        }
        Ok(())
    }
}

/// Resident set size of a process, in MiB.
#[derive(Debug, Clone, Copy)]
pub struct Memory {
    /// `VmRSS`: resident now.
    pub now: f64,
    /// `VmHWM`: the most that was ever resident.
    pub peak: f64,
    /// `RssAnon`: the resident part that is the process's own (heap, stacks), without the
    /// pages of its binary and libraries, which the page cache shares and can reclaim.
    pub anonymous: f64,
}

impl Memory {
    /// Reads /proc/<pid>/status.
    pub fn of(pid: u32) -> anyhow::Result<Self> {
        let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
        let field = |name: &str| {
            status
                .lines()
                .find(|l| l.starts_with(name))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|kb| kb.parse::<f64>().ok())
                .map(|kb| kb / 1024.0)
                .with_context(|| format!("no {name} in /proc/{pid}/status"))
        };
        Ok(Self {
            now: field("VmRSS:")?,
            peak: field("VmHWM:")?,
            anonymous: field("RssAnon:")?,
        })
    }
}

/// Size of a release binary, in MiB.
pub fn binary_size(name: &str) -> anyhow::Result<f64> {
    let path = binary_dir()?.join(name);
    Ok(std::fs::metadata(&path)
        .with_context(|| format!("{}", path.display()))?
        .len() as f64
        / 1024.0
        / 1024.0)
}
