//! The GoTrue subset supabase-js uses: sign-up (auto-confirmed), password and refresh-token
//! grants, the current user, sign-out, and the admin list/delete of users.
//!
//! Every write goes through `auth.users`, `auth.sessions` and `auth.refresh_tokens` as the role
//! Supabase Auth uses (`supabase_auth_admin`), so the project's own triggers fire as they do in
//! Supabase: a new user (signup webhook), a new session with a newer `last_sign_in_at` (login
//! webhook, also for the session a sign-up opens), a deleted session (signout webhook).

use std::sync::LazyLock;

use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, post};
use axum::{Json, Router};
use chrono::{DateTime, SecondsFormat, Utc};
use serde::Deserialize;
use serde_json::{Value, json};
use sqlx::{PgConnection, Postgres, Transaction};
use uuid::Uuid;

use crate::AppState;
use crate::keys::{ACCESS_TOKEN_SECS, DbRole, Verified};

/// Routes under `/auth/v1`.
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/signup", post(signup))
        .route("/token", post(token))
        .route("/user", get(user))
        .route("/logout", post(logout))
        .route("/admin/users", get(list_users))
        .route("/admin/users/{id}", delete(delete_user))
        .route(
            "/health",
            get(|| async { Json(json!({"name": "local-supabase"})) }),
        )
}

/// An error in GoTrue's shape. Both spellings of the code are sent (`code` as newer GoTrue
/// does, `error_code` as older): supabase-js reads whichever its API version expects, and maps
/// `session_not_found` to "Auth session missing", which the page's ghost-session cleanup uses.
#[derive(Debug)]
pub struct AuthError {
    status: StatusCode,
    code: &'static str,
    message: String,
}

impl AuthError {
    fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        Self {
            status,
            code,
            message: message.into(),
        }
    }

    fn bad_jwt(error: impl std::fmt::Display) -> Self {
        Self::new(StatusCode::FORBIDDEN, "bad_jwt", error.to_string())
    }

    fn session_not_found() -> Self {
        Self::new(
            StatusCode::FORBIDDEN,
            "session_not_found",
            "Session from session_id claim in JWT does not exist",
        )
    }
}

impl From<sqlx::Error> for AuthError {
    fn from(error: sqlx::Error) -> Self {
        tracing::error!(%error, "auth: database error");
        Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "unexpected_failure",
            "Database error",
        )
    }
}

impl IntoResponse for AuthError {
    fn into_response(self) -> Response {
        let mut body = json!({
            "code": self.code,
            "error_code": self.code,
            "msg": self.message,
            "message": self.message,
        });
        if self.code == "weak_password" {
            body["weak_password"] = json!({"reasons": ["length"]});
        }
        (self.status, Json(body)).into_response()
    }
}

type AuthResult<T> = Result<T, AuthError>;

/// The columns of `auth.users` a response is built from.
#[derive(Debug, sqlx::FromRow)]
struct UserRow {
    id: Uuid,
    aud: Option<String>,
    role: Option<String>,
    email: Option<String>,
    encrypted_password: Option<String>,
    email_confirmed_at: Option<DateTime<Utc>>,
    last_sign_in_at: Option<DateTime<Utc>>,
    raw_app_meta_data: Option<Value>,
    raw_user_meta_data: Option<Value>,
    created_at: Option<DateTime<Utc>>,
    updated_at: Option<DateTime<Utc>>,
    is_anonymous: bool,
}

const USER_COLUMNS: &str = "id, aud, role, email, encrypted_password, email_confirmed_at, \
     last_sign_in_at, raw_app_meta_data, raw_user_meta_data, created_at, updated_at, is_anonymous";

fn timestamp(at: Option<DateTime<Utc>>) -> Value {
    at.map_or(Value::Null, |at| {
        Value::String(at.to_rfc3339_opts(SecondsFormat::Micros, true))
    })
}

impl UserRow {
    fn to_json(&self) -> Value {
        json!({
            "id": self.id,
            "aud": self.aud.as_deref().unwrap_or("authenticated"),
            "role": self.role.as_deref().unwrap_or("authenticated"),
            "email": self.email,
            "email_confirmed_at": timestamp(self.email_confirmed_at),
            "phone": "",
            "confirmed_at": timestamp(self.email_confirmed_at),
            "last_sign_in_at": timestamp(self.last_sign_in_at),
            "app_metadata": self.raw_app_meta_data.clone().unwrap_or_else(|| json!({})),
            "user_metadata": self.raw_user_meta_data.clone().unwrap_or_else(|| json!({})),
            "identities": [],
            "created_at": timestamp(self.created_at),
            "updated_at": timestamp(self.updated_at),
            "is_anonymous": self.is_anonymous,
        })
    }
}

/// A transaction acting as Supabase Auth's database role.
async fn as_auth_admin(state: &AppState) -> AuthResult<Transaction<'static, Postgres>> {
    let mut tx = state.pool.begin().await?;
    sqlx::query("set local role supabase_auth_admin")
        .execute(&mut *tx)
        .await?;
    Ok(tx)
}

/// Opens a session for `user` (a sessions row, a refresh token, `last_sign_in_at` now) and
/// answers with GoTrue's session body.
async fn issue_session(
    state: &AppState,
    tx: &mut PgConnection,
    user_id: Uuid,
    user_agent: Option<&str>,
) -> AuthResult<Value> {
    let session_id: Uuid = sqlx::query_scalar(
        "insert into auth.sessions (user_id, user_agent) values ($1, $2) returning id",
    )
    .bind(user_id)
    .bind(user_agent)
    .fetch_one(&mut *tx)
    .await?;
    let user: UserRow = sqlx::query_as(&format!(
        "update auth.users set last_sign_in_at = now(), updated_at = now() where id = $1 returning {USER_COLUMNS}"
    ))
    .bind(user_id)
    .fetch_one(&mut *tx)
    .await?;
    let refresh_token = new_refresh_token(tx, user_id, session_id, None).await?;
    session_body(state, &user, session_id, &refresh_token)
}

async fn new_refresh_token(
    tx: &mut PgConnection,
    user_id: Uuid,
    session_id: Uuid,
    parent: Option<&str>,
) -> AuthResult<String> {
    let token = Uuid::new_v4().simple().to_string();
    sqlx::query(
        "insert into auth.refresh_tokens (token, user_id, session_id, parent, revoked) \
         values ($1, $2, $3, $4, false)",
    )
    .bind(&token)
    .bind(user_id.to_string())
    .bind(session_id)
    .bind(parent)
    .execute(&mut *tx)
    .await?;
    Ok(token)
}

fn session_body(
    state: &AppState,
    user: &UserRow,
    session_id: Uuid,
    refresh_token: &str,
) -> AuthResult<Value> {
    let now = Utc::now().timestamp();
    let expires_at = now + ACCESS_TOKEN_SECS;
    let claims = json!({
        "aud": "authenticated",
        "exp": expires_at,
        "iat": now,
        "iss": state.issuer,
        "sub": user.id,
        "email": user.email,
        "phone": "",
        "app_metadata": user.raw_app_meta_data.clone().unwrap_or_else(|| json!({})),
        "user_metadata": user.raw_user_meta_data.clone().unwrap_or_else(|| json!({})),
        "role": "authenticated",
        "aal": "aal1",
        "amr": [{"method": "password", "timestamp": now}],
        "session_id": session_id,
        "is_anonymous": false,
    });
    let access_token = state.keys.sign(&claims).map_err(|error| {
        AuthError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "unexpected_failure",
            error.to_string(),
        )
    })?;
    Ok(json!({
        "access_token": access_token,
        "token_type": "bearer",
        "expires_in": ACCESS_TOKEN_SECS,
        "expires_at": expires_at,
        "refresh_token": refresh_token,
        "user": user.to_json(),
    }))
}

#[derive(Debug, Deserialize)]
struct Credentials {
    email: Option<String>,
    password: Option<String>,
    #[serde(default)]
    data: Option<Value>,
}

fn user_agent(headers: &HeaderMap) -> Option<&str> {
    headers
        .get(header::USER_AGENT)
        .and_then(|value| value.to_str().ok())
}

fn normalized_email(email: Option<&str>) -> AuthResult<String> {
    let email = email.unwrap_or_default().trim().to_lowercase();
    let valid = email
        .split_once('@')
        .is_some_and(|(local, domain)| !local.is_empty() && domain.contains('.'));
    if valid && email.len() <= 255 {
        Ok(email)
    } else {
        Err(AuthError::new(
            StatusCode::BAD_REQUEST,
            "validation_failed",
            "Unable to validate email address: invalid format",
        ))
    }
}

/// bcrypt is slow on purpose; keep it off the async workers.
async fn blocking<T: Send + 'static>(work: impl FnOnce() -> T + Send + 'static) -> AuthResult<T> {
    tokio::task::spawn_blocking(work).await.map_err(|error| {
        AuthError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "unexpected_failure",
            error.to_string(),
        )
    })
}

/// `POST /auth/v1/signup`: creates a confirmed user and signs it in (local auto-confirm).
async fn signup(
    State(state): State<AppState>,
    headers: HeaderMap,
    Json(body): Json<Credentials>,
) -> AuthResult<Json<Value>> {
    let email = normalized_email(body.email.as_deref())?;
    let password = body.password.unwrap_or_default();
    if password.chars().count() < 6 {
        return Err(AuthError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "weak_password",
            "Password should be at least 6 characters.",
        ));
    }
    let hash = blocking(move || bcrypt::hash(password, bcrypt::DEFAULT_COST))
        .await?
        .map_err(|error| {
            AuthError::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                "unexpected_failure",
                error.to_string(),
            )
        })?;
    let metadata = match body.data {
        Some(Value::Object(map)) => Value::Object(map),
        _ => json!({}),
    };
    let mut tx = as_auth_admin(&state).await?;
    // Two sign-ups of one address race to the same check: serialize them on the address.
    sqlx::query("select pg_advisory_xact_lock(hashtext('local-supabase:' || $1))")
        .bind(&email)
        .execute(&mut *tx)
        .await?;
    let exists: bool = sqlx::query_scalar(
        "select exists(select 1 from auth.users where lower(email) = $1 and deleted_at is null)",
    )
    .bind(&email)
    .fetch_one(&mut *tx)
    .await?;
    if exists {
        return Err(AuthError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "user_already_exists",
            "User already registered",
        ));
    }
    let user_id: Uuid = sqlx::query_scalar(
        "insert into auth.users (instance_id, aud, role, email, encrypted_password, \
             email_confirmed_at, confirmation_sent_at, raw_app_meta_data, raw_user_meta_data) \
         values ('00000000-0000-0000-0000-000000000000', 'authenticated', 'authenticated', $1, $2, \
             now(), now(), '{\"provider\": \"email\", \"providers\": [\"email\"]}', $3) \
         returning id",
    )
    .bind(&email)
    .bind(&hash)
    .bind(&metadata)
    .fetch_one(&mut *tx)
    .await?;
    let session = issue_session(&state, &mut tx, user_id, user_agent(&headers)).await?;
    tx.commit().await?;
    tracing::info!(%user_id, "signed up");
    Ok(Json(session))
}

#[derive(Debug, Deserialize)]
struct Grant {
    grant_type: Option<String>,
}

#[derive(Debug, Deserialize)]
struct TokenBody {
    email: Option<String>,
    password: Option<String>,
    refresh_token: Option<String>,
}

/// `POST /auth/v1/token?grant_type=password|refresh_token`.
async fn token(
    State(state): State<AppState>,
    Query(grant): Query<Grant>,
    headers: HeaderMap,
    Json(body): Json<TokenBody>,
) -> AuthResult<Json<Value>> {
    match grant.grant_type.as_deref() {
        Some("password") => password_grant(state, &headers, body).await,
        Some("refresh_token") => refresh_grant(state, body).await,
        other => Err(AuthError::new(
            StatusCode::BAD_REQUEST,
            "validation_failed",
            format!("unsupported_grant_type: {}", other.unwrap_or("")),
        )),
    }
    .map(Json)
}

/// A real hash of no one's password, checked when the address is unknown.
static UNKNOWN_USER_HASH: LazyLock<String> = LazyLock::new(|| {
    bcrypt::hash(Uuid::new_v4().to_string(), bcrypt::DEFAULT_COST).unwrap_or_default()
});

fn invalid_credentials() -> AuthError {
    AuthError::new(
        StatusCode::BAD_REQUEST,
        "invalid_credentials",
        "Invalid login credentials",
    )
}

async fn password_grant(
    state: AppState,
    headers: &HeaderMap,
    body: TokenBody,
) -> AuthResult<Value> {
    let email = normalized_email(body.email.as_deref()).map_err(|_| invalid_credentials())?;
    let password = body.password.unwrap_or_default();
    let mut tx = as_auth_admin(&state).await?;
    let user: Option<UserRow> = sqlx::query_as(&format!(
        "select {USER_COLUMNS} from auth.users where lower(email) = $1 and deleted_at is null \
         order by created_at limit 1"
    ))
    .bind(&email)
    .fetch_optional(&mut *tx)
    .await?;
    // An unknown address costs one bcrypt too, so timing does not tell which addresses exist.
    let hash = user
        .as_ref()
        .and_then(|user| user.encrypted_password.clone())
        .unwrap_or_else(|| UNKNOWN_USER_HASH.clone());
    let matches = blocking(move || bcrypt::verify(password, &hash).unwrap_or(false)).await?;
    let Some(user) = user.filter(|_| matches) else {
        return Err(invalid_credentials());
    };
    let session = issue_session(&state, &mut tx, user.id, user_agent(headers)).await?;
    tx.commit().await?;
    Ok(session)
}

async fn refresh_grant(state: AppState, body: TokenBody) -> AuthResult<Value> {
    let presented = body.refresh_token.unwrap_or_default();
    let not_found = || {
        AuthError::new(
            StatusCode::BAD_REQUEST,
            "refresh_token_not_found",
            "Invalid Refresh Token: Refresh Token Not Found",
        )
    };
    let mut tx = as_auth_admin(&state).await?;
    let row: Option<(String, Option<bool>, Option<Uuid>)> = sqlx::query_as(
        "select user_id, revoked, session_id from auth.refresh_tokens where token = $1 for update",
    )
    .bind(&presented)
    .fetch_optional(&mut *tx)
    .await?;
    let Some((user_id, revoked, Some(session_id))) = row else {
        return Err(not_found());
    };
    if revoked == Some(true) {
        return Err(AuthError::new(
            StatusCode::BAD_REQUEST,
            "refresh_token_already_used",
            "Invalid Refresh Token: Already Used",
        ));
    }
    let user_id: Uuid = user_id.parse().map_err(|_| not_found())?;
    sqlx::query(
        "update auth.refresh_tokens set revoked = true, updated_at = now() where token = $1",
    )
    .bind(&presented)
    .execute(&mut *tx)
    .await?;
    sqlx::query("update auth.sessions set refreshed_at = now(), updated_at = now() where id = $1")
        .bind(session_id)
        .execute(&mut *tx)
        .await?;
    let user: Option<UserRow> = sqlx::query_as(&format!(
        "select {USER_COLUMNS} from auth.users where id = $1 and deleted_at is null"
    ))
    .bind(user_id)
    .fetch_optional(&mut *tx)
    .await?;
    let user = user.ok_or_else(not_found)?;
    let token = new_refresh_token(&mut tx, user_id, session_id, Some(&presented)).await?;
    let session = session_body(&state, &user, session_id, &token)?;
    tx.commit().await?;
    Ok(session)
}

/// The bearer token of a user request, verified.
fn bearer(state: &AppState, headers: &HeaderMap) -> AuthResult<Verified> {
    let token = headers
        .get(header::AUTHORIZATION)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| {
            value
                .strip_prefix("Bearer ")
                .or_else(|| value.strip_prefix("bearer "))
        })
        .ok_or_else(|| {
            AuthError::new(
                StatusCode::UNAUTHORIZED,
                "no_authorization",
                "This endpoint requires a Bearer token",
            )
        })?;
    state.keys.verify(token).map_err(AuthError::bad_jwt)
}

/// The user and session a user token names; `session_not_found` once signed out or deleted.
async fn current(state: &AppState, headers: &HeaderMap) -> AuthResult<(UserRow, Uuid)> {
    let verified = bearer(state, headers)?;
    let (Some(user_id), Some(session_id)) = (
        verified.subject().and_then(|sub| sub.parse::<Uuid>().ok()),
        verified.session_id().and_then(|id| id.parse::<Uuid>().ok()),
    ) else {
        return Err(AuthError::bad_jwt("missing sub or session_id claim"));
    };
    let mut tx = as_auth_admin(state).await?;
    let user: Option<UserRow> = sqlx::query_as(&format!(
        "select {USER_COLUMNS} from auth.users u where id = $1 and deleted_at is null \
           and exists (select 1 from auth.sessions s where s.id = $2 and s.user_id = u.id)"
    ))
    .bind(user_id)
    .bind(session_id)
    .fetch_optional(&mut *tx)
    .await?;
    tx.commit().await?;
    user.map(|user| (user, session_id))
        .ok_or_else(AuthError::session_not_found)
}

/// `GET /auth/v1/user`.
async fn user(State(state): State<AppState>, headers: HeaderMap) -> AuthResult<Json<Value>> {
    let (user, _) = current(&state, &headers).await?;
    Ok(Json(user.to_json()))
}

#[derive(Debug, Deserialize)]
struct Scope {
    scope: Option<String>,
}

/// `POST /auth/v1/logout?scope=global|local|others`: deletes the sessions (their refresh
/// tokens go with them), which the signout trigger reports.
async fn logout(
    State(state): State<AppState>,
    Query(scope): Query<Scope>,
    headers: HeaderMap,
) -> AuthResult<StatusCode> {
    let (user, session_id) = current(&state, &headers).await?;
    let mut tx = as_auth_admin(&state).await?;
    // $2 is this session: kept by `others`, the only one removed by `local`, one of all for `global`.
    let statement = match scope.scope.as_deref().unwrap_or("global") {
        "local" => "delete from auth.sessions where user_id = $1 and id = $2",
        "others" => "delete from auth.sessions where user_id = $1 and id <> $2",
        "global" => "delete from auth.sessions where user_id = $1 or id = $2",
        _ => {
            return Err(AuthError::new(
                StatusCode::BAD_REQUEST,
                "validation_failed",
                "scope must be global, local or others",
            ));
        }
    };
    sqlx::query(statement)
        .bind(user.id)
        .bind(session_id)
        .execute(&mut *tx)
        .await?;
    tx.commit().await?;
    Ok(StatusCode::NO_CONTENT)
}

fn require_service_role(state: &AppState, headers: &HeaderMap) -> AuthResult<()> {
    let verified = bearer(state, headers)?;
    if verified.role == DbRole::ServiceRole {
        Ok(())
    } else {
        Err(AuthError::new(
            StatusCode::FORBIDDEN,
            "not_admin",
            "User not allowed",
        ))
    }
}

#[derive(Debug, Deserialize)]
struct Page {
    page: Option<i64>,
    per_page: Option<i64>,
}

/// `GET /auth/v1/admin/users` (service role only).
async fn list_users(
    State(state): State<AppState>,
    Query(page): Query<Page>,
    headers: HeaderMap,
) -> AuthResult<Response> {
    require_service_role(&state, &headers)?;
    let per_page = page.per_page.unwrap_or(50).clamp(1, 1000);
    let page_number = page.page.unwrap_or(1).max(1);
    let mut tx = as_auth_admin(&state).await?;
    let total: i64 = sqlx::query_scalar("select count(*) from auth.users where deleted_at is null")
        .fetch_one(&mut *tx)
        .await?;
    let users: Vec<UserRow> = sqlx::query_as(&format!(
        "select {USER_COLUMNS} from auth.users where deleted_at is null \
         order by created_at, id limit $1 offset $2"
    ))
    .bind(per_page)
    .bind((page_number - 1) * per_page)
    .fetch_all(&mut *tx)
    .await?;
    tx.commit().await?;
    let users: Vec<Value> = users.iter().map(UserRow::to_json).collect();
    Ok((
        [("x-total-count", total.to_string())],
        Json(json!({"users": users, "aud": "authenticated"})),
    )
        .into_response())
}

/// `DELETE /auth/v1/admin/users/{id}` (service role only); the user's sessions go with it.
async fn delete_user(
    State(state): State<AppState>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> AuthResult<Json<Value>> {
    require_service_role(&state, &headers)?;
    let not_found = || AuthError::new(StatusCode::NOT_FOUND, "user_not_found", "User not found");
    let id: Uuid = id.parse().map_err(|_| not_found())?;
    let mut tx = as_auth_admin(&state).await?;
    let user: Option<UserRow> = sqlx::query_as(&format!(
        "delete from auth.users where id = $1 returning {USER_COLUMNS}"
    ))
    .bind(id)
    .fetch_optional(&mut *tx)
    .await?;
    tx.commit().await?;
    user.map(|user| Json(user.to_json())).ok_or_else(not_found)
}
