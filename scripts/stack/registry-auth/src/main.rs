//! registry-auth: the stack's schema registry with HTTP Basic auth on every endpoint.
//!
//! It serves the real rivven-schema 0.0.22 registry, in memory exactly as `rivven-schema serve`
//! does, through rivven's own authentication middleware and subject-level RBAC
//! (`SchemaServer::with_auth`, which rivven-schema's command line never enables). The users
//! come from a file of `user:password:role` lines; see README.md for the roles and what rivven
//! checks. Passwords are never logged, and no error message quotes a line of the users file.

use std::collections::{BTreeSet, HashSet};
use std::io::IsTerminal;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{bail, Context};
use clap::Parser;
use rivven_core::{AuthManager, Permission, PrincipalType, ResourceType, Role};
use rivven_schema::{AuthConfig, RegistryConfig, SchemaRegistry, SchemaServer, ServerConfig};
use tracing::info;

/// rivven-schema's registry (in memory) with HTTP Basic auth required on every endpoint.
#[derive(Parser)]
#[command(name = "registry-auth", version)]
struct Args {
    /// Address to bind to
    #[arg(long, default_value = "127.0.0.1")]
    host: String,

    /// Port to listen on
    #[arg(long, default_value_t = 8081)]
    port: u16,

    /// The users: one `user:password:role` a line (role: admin, reader or
    /// writer=SUBJECT[,SUBJECT...]); blank lines and lines starting with # are skipped
    #[arg(long)]
    users_file: PathBuf,
}

/// What a user of the file may do; see README.md.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Access {
    /// rivven's built-in `admin` role: (Cluster, All), every operation on every subject.
    Admin,
    /// No schema permission: rivven checks none on reads, so every GET (and the compatibility
    /// and validation POSTs) is allowed; registering, deleting and config changes are 403.
    Reader,
    /// Create (register, undelete) on the listed subjects only; rivven 0.0.22 matches a
    /// subject's permission exactly (no patterns), so each subject is named.
    Writer(BTreeSet<String>),
}

struct User {
    name: String,
    password: String,
    access: Access,
}

// The password stays out of any Debug output.
impl std::fmt::Debug for User {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("User")
            .field("name", &self.name)
            .field("password", &"[REDACTED]")
            .field("access", &self.access)
            .finish()
    }
}

/// Reads the users file; any missing, unreadable or malformed file is an error that names the
/// line number (never the line itself, which holds a password).
fn read_users(path: &Path) -> anyhow::Result<Vec<User>> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("cannot read the users file {}", path.display()))?;
    let mut users = Vec::new();
    let mut names = HashSet::new();
    for (index, raw) in text.lines().enumerate() {
        let line = raw.trim_end_matches('\r');
        if line.trim().is_empty() || line.trim_start().starts_with('#') {
            continue;
        }
        let at = || format!("users file {}, line {}", path.display(), index + 1);
        // user:password:role; the password may itself contain ':'
        let (Some((name, rest)), true) = (line.split_once(':'), line.matches(':').count() >= 2)
        else {
            bail!("{}: expected user:password:role", at());
        };
        let (password, role) = rest.rsplit_once(':').expect("two colons were counted");
        if name.is_empty() || name.len() > 255 || name.chars().any(char::is_whitespace) {
            bail!(
                "{}: the user name must be 1 to 255 characters, no spaces",
                at()
            );
        }
        if password.is_empty() {
            bail!("{}: user '{}' has an empty password", at(), name);
        }
        let access = parse_role(role.trim())
            .map_err(|e| anyhow::anyhow!("{}: user '{}': {e}", at(), name))?;
        if !names.insert(name.to_string()) {
            bail!("{}: user '{}' is listed twice", at(), name);
        }
        users.push(User {
            name: name.to_string(),
            password: password.to_string(),
            access,
        });
    }
    if users.is_empty() {
        bail!("the users file {} lists no user", path.display());
    }
    Ok(users)
}

fn parse_role(role: &str) -> anyhow::Result<Access> {
    match role {
        "admin" => Ok(Access::Admin),
        "reader" => Ok(Access::Reader),
        "writer" => bail!(
            "role 'writer' needs its subjects (writer=SUBJECT[,SUBJECT...]): rivven 0.0.22 grants \
             a subject's permission by exact name only; use 'admin' for every subject"
        ),
        _ => match role.strip_prefix("writer=") {
            Some(list) => {
                let subjects: BTreeSet<String> = list
                    .split(',')
                    .map(str::trim)
                    .filter(|s| !s.is_empty())
                    .map(str::to_string)
                    .collect();
                if subjects.is_empty() {
                    bail!("role 'writer=' names no subject");
                }
                Ok(Access::Writer(subjects))
            }
            None => bail!(
                "unknown role '{}' (admin, reader or writer=SUBJECT[,SUBJECT...])",
                role
            ),
        },
    }
}

/// The rivven role a user gets: the built-in `admin`, or a custom role created here.
fn rivven_role(auth: &AuthManager, user: &User) -> anyhow::Result<String> {
    let name = match &user.access {
        Access::Admin => return Ok("admin".to_string()),
        Access::Reader => "registry-reader".to_string(),
        Access::Writer(_) => format!("registry-writer:{}", user.name),
    };
    if auth.get_role(&name).is_some() {
        return Ok(name);
    }
    let (description, permissions) = match &user.access {
        Access::Reader => (
            "authenticated reads (rivven checks no permission on reads)".to_string(),
            HashSet::new(),
        ),
        Access::Writer(subjects) => (
            format!("registers schemas under {} subject(s)", subjects.len()),
            subjects
                .iter()
                .map(|s| (ResourceType::Schema(s.clone()), Permission::Create))
                .collect(),
        ),
        Access::Admin => unreachable!(),
    };
    auth.create_role(Role {
        name: name.clone(),
        description,
        permissions,
        builtin: false,
    })
    .map_err(|e| anyhow::anyhow!("cannot create role {name}: {e}"))?;
    Ok(name)
}

#[tokio::main]
async fn main() -> ExitCode {
    let args = Args::parse();
    match run(args).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            // one line, the causes joined (no backtrace)
            eprintln!("registry-auth: error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

async fn run(args: Args) -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_ansi(std::io::stdout().is_terminal() && std::env::var_os("NO_COLOR").is_none())
        .init();

    let addr: SocketAddr = format!("{}:{}", args.host, args.port)
        .parse()
        .with_context(|| format!("invalid address {}:{}", args.host, args.port))?;
    let users = read_users(&args.users_file)?;

    // rivven-core's defaults: sessions of 1 h, 5 failed attempts lock a user out for 5 min.
    let auth = Arc::new(AuthManager::new(rivven_core::AuthConfig::default()));
    for user in &users {
        let role = rivven_role(&auth, user)?;
        // PBKDF2 (600k iterations) off the runtime; rivven also enforces its password policy
        // here (8+ characters with upper and lower case, a digit and a special character).
        auth.create_principal_async(
            &user.name,
            &user.password,
            PrincipalType::User,
            HashSet::from([role.clone()]),
        )
        .await
        .map_err(|e| {
            anyhow::anyhow!(
                "users file {}: user '{}': {e}",
                args.users_file.display(),
                user.name
            )
        })?;
        info!(user = %user.name, role = %role, "user");
    }

    // Every Basic-auth request opens a session in the AuthManager; drop the expired ones.
    let sweeper = auth.clone();
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(Duration::from_secs(60));
        loop {
            tick.tick().await;
            sweeper.cleanup_expired_sessions();
        }
    });

    let registry = SchemaRegistry::new(RegistryConfig::memory()).await?;
    // Authentication required, no anonymous reads, Basic only (no Bearer session ids, no API
    // keys). rivven's middleware wraps the whole router, /health and / included.
    let auth_config = AuthConfig::required()
        .with_anonymous_read(false)
        .with_basic_auth(true)
        .with_bearer_token(false);
    let config = ServerConfig {
        host: args.host.clone(),
        port: args.port,
        auth: Some(auth_config),
    };
    info!(
        "registry-auth: rivven-schema 0.0.22 (in memory) with Basic auth for {} user(s) on http://{}",
        users.len(),
        addr
    );
    SchemaServer::with_auth(registry, config, auth)
        .run(addr)
        .await
}
