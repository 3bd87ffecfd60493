//! The production gateway against the real broker and registry.

use std::net::TcpListener as StdListener;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::extract::State;
use axum::routing::get;
use serde_json::{Value, json};
use substrate::testing::{eventually, unique};

use crate::fakes::WEBHOOK_SECRET;
use crate::helpers::{Env, spawn_app};
use crate::tokens::{claims, es256, hs256, hs256_with, jwk, token};

fn auth(sub: &str) -> Vec<(&'static str, String)> {
    vec![("authorization", format!("Bearer {}", token(sub)))]
}

#[tokio::test(flavor = "multi_thread")]
async fn each_route_lands_confluent_framed_on_its_topic_with_server_set_identity() {
    // Arrange
    let env = Env::new(&[
        "public.identity.login.events",
        "public.identity.signup.events",
        "public.identity.signout.events",
        "public.user.message.events",
        "internal.media.upload.intent",
        "internal.media.download.intent",
        "internal.media.delete.intent",
    ])
    .await;
    env.write_default_routes();
    let app = spawn_app(env.config()).await;
    let secret = vec![("x-webhook-secret", WEBHOOK_SECRET.to_owned())];

    // Act: one request per route; the user bodies try to speak for "victim".
    let login = json!({"user_id":"u-1","email":"a@b.c","login_time":"2026-02-25T10:00:00.123+00:00","device_id":null,"user_agent":"ua","ip_address":null});
    let signup = json!({"user_id":"u-1","email":"a@b.c","signup_time":"2026-02-25T10:00:00+00:00"});
    let signout = json!({"user_id":"u-1","email":null,"signout_time":"2026-02-25T11:00:00+00:00","device_id":null,"user_agent":"ua","ip_address":"10.0.0.1"});
    let message = json!({"user_id":"victim","email":"v@x.y","message":"hello <world> & co","timestamp":"2026-02-25T10:00:00.000Z","visibility":"broadcast","recipient_id":null});
    assert_eq!(app.post("/webhooks/login", &secret, &login).await.0, 204);
    assert_eq!(app.post("/webhooks/signup", &secret, &signup).await.0, 204);
    assert_eq!(
        app.post("/webhooks/signout", &secret, &signout).await.0,
        204
    );
    assert_eq!(
        app.post("/api/v1/events/message", &auth("real-user"), &message)
            .await
            .0,
        204
    );
    let (status, upload) = app
        .post(
            "/api/v1/media/upload-intent",
            &auth("real-user"),
            &json!({"file_name":"a.jpg","media_type":"image/jpeg","file_size":2048000,"user_id":"victim"}),
        )
        .await;
    assert_eq!(status, 202, "{upload}");
    let path = json!({"file_path":"files/victim/x/a.jpg","user_id":"victim"});
    let (status, download) = app
        .post("/api/v1/media/download-intent", &auth("real-user"), &path)
        .await;
    assert_eq!(status, 202, "{download}");
    let (status, delete) = app
        .post("/api/v1/media/delete-intent", &auth("real-user"), &path)
        .await;
    assert_eq!(status, 202, "{delete}");

    // Assert: every record is on its own topic, framed, decodable, with the expected fields.
    let ids: std::sync::Mutex<std::collections::HashSet<Option<String>>> = Default::default();
    let ids = &ids;
    let one = |contract: &'static str| {
        let env = &env;
        async move {
            let mut records = env.read_decoded(contract, 1).await;
            assert_eq!(records.len(), 1, "{contract}");
            let (message, schema_id, value) = records.remove(0);
            let payload = message.payload.clone().unwrap_or_default();
            assert_eq!(payload[0], 0, "{contract}: magic byte");
            assert_eq!(
                u32::from_be_bytes([payload[1], payload[2], payload[3], payload[4]]),
                schema_id
            );
            assert!(message.key.is_none(), "{contract}: keyless");
            // One header, the event's own identity (what consumers key idempotent effects on).
            assert_eq!(
                message.headers.len(),
                1,
                "{contract}: {:?}",
                message.headers
            );
            let id = message.event_id().map(str::to_owned);
            assert!(
                id.as_deref()
                    .is_some_and(|id| uuid::Uuid::parse_str(id).is_ok()),
                "{contract}: ce_id {id:?}"
            );
            ids.lock().unwrap_or_else(|p| p.into_inner()).insert(id);
            value
        }
    };
    assert_eq!(one("public.identity.login.events").await, login);
    assert_eq!(one("public.identity.signup.events").await, signup);
    assert_eq!(one("public.identity.signout.events").await, signout);
    let sent = one("public.user.message.events").await;
    assert_eq!(
        sent["user_id"], "real-user",
        "identity from the token, not the body"
    );
    assert_eq!(sent["message"], "hello <world> & co");
    let intent = one("internal.media.upload.intent").await;
    assert_eq!(intent["user_id"], "real-user");
    assert_eq!(intent["request_id"], upload["request_id"]);
    assert_eq!(intent["file_size"], 2_048_000);
    for (contract, reply) in [
        ("internal.media.download.intent", &download),
        ("internal.media.delete.intent", &delete),
    ] {
        let event = one(contract).await;
        assert_eq!(event["user_id"], "real-user", "{contract}");
        assert_eq!(event["request_id"], reply["request_id"], "{contract}");
        assert_eq!(event["file_path"], "files/victim/x/a.jpg", "{contract}");
    }
    assert_eq!(
        ids.lock().unwrap_or_else(|p| p.into_inner()).len(),
        7,
        "every event has an identity of its own"
    );
}

/// Serves a JWKS document that the test can swap (key rotation).
async fn jwks_server(keys: Arc<Mutex<Value>>) -> String {
    async fn serve(State(keys): State<Arc<Mutex<Value>>>) -> axum::Json<Value> {
        axum::Json(keys.lock().map(|k| k.clone()).unwrap_or_default())
    }
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    let router = Router::new()
        .route("/jwks.json", get(serve))
        .with_state(keys);
    tokio::spawn(async move { axum::serve(listener, router).await });
    format!("http://{address}/jwks.json")
}

#[tokio::test(flavor = "multi_thread")]
async fn the_jwt_attack_matrix_is_refused_and_rotated_es256_keys_are_picked_up() {
    // Arrange: HS256 secret + a JWKS that holds key "a" as kid k1.
    let env = Env::new(&["public.user.message.events"]).await;
    env.write_default_routes();
    let keys = Arc::new(Mutex::new(json!({"keys": [jwk("a", "k1")]})));
    let mut settings = env.config();
    settings.service.auth.jwks_url = Some(jwks_server(keys.clone()).await);
    settings.service.auth.jwks_min_refresh_secs = 0;
    settings.service.auth.issuer = None;
    let app = spawn_app(settings).await;
    let body = json!({"user_id":"x","email":"e","message":"m","timestamp":"t"});
    let post = |token: String| {
        let app = &app;
        let body = &body;
        async move {
            app.post(
                "/api/v1/events/message",
                &[("authorization", format!("Bearer {token}"))],
                body,
            )
            .await
            .0
        }
    };

    // Valid tokens of both algorithms are accepted.
    assert_eq!(post(token("hs-user")).await, 204, "HS256");
    assert_eq!(
        post(es256("a", Some("k1"), &claims("es-user"))).await,
        204,
        "ES256 by kid"
    );
    assert_eq!(
        post(es256("a", None, &claims("es-user"))).await,
        204,
        "ES256 without kid"
    );

    // The attack matrix.
    let public_key_as_secret = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fixtures/es256-a.xy"
    ))
    .unwrap_or_default();
    let mut expired = claims("u");
    expired["exp"] = json!(chrono::Utc::now().timestamp() - 600);
    let mut wrong_aud = claims("u");
    wrong_aud["aud"] = json!("service_role");
    let cases = [
        (
            "HS256 signed with the public key (alg swap)",
            hs256_with(&claims("u"), &public_key_as_secret),
        ),
        (
            "ES256 signed by an unknown key under a known kid",
            es256("b", Some("k1"), &claims("u")),
        ),
        (
            "ES256 with an unknown kid",
            es256("b", Some("k2"), &claims("u")),
        ),
        ("expired", es256("a", Some("k1"), &expired)),
        ("wrong audience", hs256(&wrong_aud)),
        ("alg none", crate::tokens::unsigned("u")),
        (
            "forged HS256",
            hs256_with(&claims("u"), "not-the-secret-but-32-characters-long"),
        ),
    ];
    for (case, token) in cases {
        assert_eq!(post(token).await, 401, "{case}");
    }

    // Rotation: the issuer publishes key "b" as k2; the next token with k2 triggers a refresh.
    *keys.lock().unwrap_or_else(|p| p.into_inner()) =
        json!({"keys": [jwk("a", "k1"), jwk("b", "k2")]});
    assert_eq!(
        post(es256("b", Some("k2"), &claims("rotated"))).await,
        204,
        "rotated key accepted"
    );

    let accepted = env.read_decoded("public.user.message.events", 5).await;
    let users: Vec<&str> = accepted
        .iter()
        .map(|(_, _, v)| v["user_id"].as_str().unwrap_or_default())
        .collect();
    assert_eq!(
        users,
        ["hs-user", "es-user", "es-user", "rotated"],
        "only accepted tokens produced events"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_configmap_style_swap_of_routes_yaml_takes_effect_without_restart() {
    // Arrange: Kubernetes layout: routes.yaml -> ..data/routes.yaml, ..data -> ..v1
    let env = Env::new(&["public.user.message.events"]).await;
    let dir = &env.routes_dir;
    let write_version = |name: &str, text: &str| {
        let version = dir.join(name);
        std::fs::create_dir_all(&version).unwrap();
        std::fs::write(version.join("routes.yaml"), text).unwrap();
    };
    let swap_data = |target: &str| {
        let tmp = dir.join("..data_tmp");
        let _ = std::fs::remove_file(&tmp);
        std::os::unix::fs::symlink(target, &tmp).unwrap();
        std::fs::rename(&tmp, dir.join("..data")).unwrap();
    };
    write_version("..v1", "externalRoutes: {}\n");
    swap_data("..v1");
    std::os::unix::fs::symlink(Path::new("..data/routes.yaml"), env.routes_file()).unwrap();
    let app = spawn_app(env.config()).await;
    let body = json!({"user_id":"x","email":"e","message":"m","timestamp":"t"});
    assert_eq!(
        app.post("/api/v1/events/message", &auth("u"), &body)
            .await
            .0,
        403
    );

    // Act: kubelet writes a new version and swaps the ..data symlink atomically.
    let topic = env.topic("public.user.message.events");
    write_version("..v2", &format!("externalRoutes:\n  message: {topic}\n"));
    swap_data("..v2");

    // Assert: the new route is served; a broken version later keeps the last good one.
    let live = eventually(Duration::from_secs(10), || async {
        app.post("/api/v1/events/message", &auth("u"), &body)
            .await
            .0
            == 204
    })
    .await;
    assert!(live, "the swapped routes file was not picked up");
    write_version("..v3", "externalRoutes: [broken");
    swap_data("..v3");
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(
        app.post("/api/v1/events/message", &auth("u"), &body)
            .await
            .0,
        204,
        "last good routes stay"
    );
}

/// A private broker the test can stop and start (the shared one must stay up for other tests): a
/// single-node Apache Kafka run by the stack's own launcher, with its data in a directory of
/// its own so a restart keeps its topics.
struct Broker {
    dir: std::path::PathBuf,
    port: u16,
    controller_port: u16,
    child: Option<Child>,
}

fn free_port() -> u16 {
    StdListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .unwrap()
}

impl Broker {
    fn start(&self) -> Child {
        let launcher = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../scripts/stack/kafka-node.sh"
        );
        Command::new("bash")
            .arg(launcher)
            .arg(&self.dir)
            .arg(self.port.to_string())
            .arg(self.controller_port.to_string())
            // A small heap: this broker carries a handful of records.
            .env("KAFKA_HEAP_OPTS", "-Xms64m -Xmx256m")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("starting a private Kafka ({launcher}): {e}"))
    }

    async fn new() -> Self {
        let mut broker = Self {
            dir: std::env::temp_dir().join(unique("kafka")),
            port: free_port(),
            controller_port: free_port(),
            child: None,
        };
        broker.child = Some(broker.start());
        broker.wait_listening().await;
        broker
    }

    async fn wait_listening(&self) {
        let port = self.port;
        // A JVM broker on a loaded 2-core machine can take tens of seconds to open its port.
        let up = eventually(Duration::from_secs(90), || async move {
            tokio::net::TcpStream::connect(("127.0.0.1", port))
                .await
                .is_ok()
        })
        .await;
        assert!(up, "private broker did not start");
    }

    fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    async fn restart(&mut self) {
        self.child = Some(self.start());
        self.wait_listening().await;
    }
}

impl Drop for Broker {
    fn drop(&mut self) {
        self.stop();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn with_the_broker_down_requests_get_503_and_nothing_acknowledged_is_lost() {
    // Arrange: a gateway on its own broker with a 2 s delivery bound.
    let mut broker = Broker::new().await;
    let mut env = Env::new(&[]).await;
    env.stack.kafka.brokers = format!("127.0.0.1:{}", broker.port);
    let topic = unique("gw.outage.public.user.message.events");
    env.stack.create_topics(&[&topic]).await;
    let schema = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../avro/public/user/message.events.avsc"
    ))
    .unwrap();
    env.codec
        .registry()
        .register_for_topic(&topic, &schema)
        .await
        .unwrap();
    env.topics
        .insert("public.user.message.events".into(), topic.clone());
    env.write_default_routes();
    let mut settings = env.config();
    settings.backbone.kafka.delivery_timeout_ms = 2_000;
    let app = spawn_app(settings).await;
    let message =
        |n: usize| json!({"user_id":"x","email":"e","message":format!("msg-{n}"),"timestamp":"t"});
    let mut acknowledged = Vec::new();

    for n in 0..3 {
        let (status, body) = app
            .post("/api/v1/events/message", &auth("u"), &message(n))
            .await;
        assert_eq!(status, 204, "{body}");
        acknowledged.push(format!("msg-{n}"));
    }

    // Act: the broker goes away.
    broker.stop();
    let (status, body) = app
        .post("/api/v1/events/message", &auth("u"), &message(100))
        .await;

    // Assert: a bounded 503 with a JSON error, never a false success.
    assert_eq!(status, 503, "{body}");
    assert_eq!(body["error"], "unavailable");

    // Act: the broker comes back; requests succeed again.
    broker.restart().await;
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    let mut recovered = false;
    for n in 200.. {
        let body = message(n);
        let (status, _) = app.post("/api/v1/events/message", &auth("u"), &body).await;
        if status == 204 {
            acknowledged.push(format!("msg-{n}"));
            recovered = true;
            break;
        }
        if std::time::Instant::now() > deadline {
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert!(
        recovered,
        "requests did not succeed after the broker restarted"
    );

    // Assert: everything answered 204 is on the topic.
    let records = env
        .read_decoded("public.user.message.events", acknowledged.len())
        .await;
    let stored: Vec<String> = records
        .iter()
        .map(|(_, _, v)| v["message"].as_str().unwrap_or_default().to_owned())
        .collect();
    for message in &acknowledged {
        assert!(
            stored.contains(message),
            "{message} was acknowledged but is missing: {stored:?}"
        );
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn legacy_routes_spend_credits_atomically_and_delete_for_real() {
    // Arrange: a real database where the user has exactly one credit and one file.
    let env = Env::new(&["public.media.delete.events", "internal.media.delete.retry"]).await;
    env.write_default_routes();
    let db = substrate::testing::TestDatabase::create(&env.stack, "legacy").await;
    let user = "11111111-2222-3333-4444-555555555555";
    sqlx::query(
        "insert into public.credit_ledger (user_id, amount, event_type, description, event_time)
         values ($1, 1, 'credit.signup_bonus', 'Welcome bonus', '2026-02-25T10:00:00Z')",
    )
    .bind(user)
    .execute(&db.pool)
    .await
    .unwrap();
    let path = format!("files/{user}/{}/doc.pdf", unique("f"));
    sqlx::query(
        "insert into public.media_files (user_id, file_name, file_path, file_size, media_type, upload_time)
         values ($1, 'doc.pdf', $2, 7, 'application/pdf', 't')",
    )
    .bind(user)
    .bind(&path)
    .execute(&db.pool)
    .await
    .unwrap();
    let mut settings = env.config();
    settings.backbone.postgres.url = secrecy::SecretString::from(db.url.clone());
    let app = spawn_app(settings).await;

    // Act: two uploads race for the last credit.
    let body = json!({"file_name":"a.jpg","media_type":"image/jpeg","file_size":10});
    let headers = auth(user);
    let (a, b) = tokio::join!(
        app.post("/api/v1/media/upload-url", &headers, &body),
        app.post("/api/v1/media/upload-url", &headers, &body)
    );

    // Assert: exactly one URL, one 402, and the ledger is at zero.
    let mut statuses = [a.0, b.0];
    statuses.sort_unstable();
    assert_eq!(statuses, [200, 402], "{a:?} {b:?}");
    let balance: i64 = sqlx::query_scalar(
        "select coalesce(sum(amount), 0)::bigint from public.credit_ledger where user_id = $1",
    )
    .bind(user)
    .fetch_one(&db.pool)
    .await
    .unwrap();
    assert_eq!(balance, 0, "one credit bought one upload");
    let notified: Vec<String> = sqlx::query_scalar(
        "select payload from public.user_notifications
         where user_id = $1 and event_type = 'credit.balance_changed'",
    )
    .bind(user)
    .fetch_all(&db.pool)
    .await
    .unwrap();
    assert_eq!(notified.len(), 1, "one balance notification per spend");
    let payload: serde_json::Value = serde_json::from_str(&notified[0]).unwrap();
    assert_eq!(
        (
            &payload["amount"],
            &payload["reason"],
            &payload["file_name"]
        ),
        (&json!(-1), &json!("upload_deducted"), &json!("a.jpg"))
    );

    // Act + Assert: the legacy delete soft-deletes, notifies, and a second delete is a 404.
    let file = json!({ "file_path": path });
    let (status, body) = app.post("/api/v1/media/delete", &auth(user), &file).await;
    assert_eq!((status, body), (200, json!({"success": true})));
    let status: String =
        sqlx::query_scalar("select status from public.media_files where file_path = $1")
            .bind(&path)
            .fetch_one(&db.pool)
            .await
            .unwrap();
    assert_eq!(status, "deleted");
    assert_eq!(
        app.post("/api/v1/media/delete", &auth(user), &file).await.0,
        404
    );
    let deleted = env.read_decoded("public.media.delete.events", 1).await;
    assert_eq!(deleted.len(), 1, "one FileDeleted event");
    assert_eq!(deleted[0].2["file_path"], path.as_str());
    assert_eq!(deleted[0].2["file_size"], 7);
    let other = app
        .post("/api/v1/media/download-url", &auth("someone-else"), &file)
        .await;
    assert_eq!(other.0, 404);
}

/// A test CA and a JWKS served over HTTPS with a certificate it signed for 127.0.0.1. Returns
/// the URL and the CA's PEM file.
async fn https_jwks_server(keys: Value, dir: &Path) -> (String, String) {
    use hyper_util::rt::{TokioExecutor, TokioIo};
    use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, KeyPair};

    let ca_key = KeyPair::generate().unwrap();
    let mut ca = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca.distinguished_name
        .push(DnType::CommonName, "event-substrate test CA");
    let ca_cert = ca.self_signed(&ca_key).unwrap();
    let server_key = KeyPair::generate().unwrap();
    let server_cert = CertificateParams::new(vec!["127.0.0.1".to_owned()])
        .unwrap()
        .signed_by(&server_key, &ca_cert, &ca_key)
        .unwrap();
    let ca_file = dir.join("ca.pem");
    std::fs::write(&ca_file, ca_cert.pem()).unwrap();

    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(
            vec![server_cert.der().clone()],
            rustls::pki_types::PrivateKeyDer::Pkcs8(server_key.serialize_der().into()),
        )
        .unwrap();
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
    let router = Router::new().route(
        "/jwks.json",
        get(move || {
            let keys = keys.clone();
            async move { axum::Json(keys) }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((tcp, _)) = listener.accept().await {
            let (acceptor, router) = (acceptor.clone(), router.clone());
            tokio::spawn(async move {
                // A client that refuses the certificate ends the handshake: nothing to serve.
                if let Ok(tls) = acceptor.accept(tcp).await {
                    let service = hyper_util::service::TowerToHyperService::new(router);
                    let _ = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new())
                        .serve_connection(TokioIo::new(tls), service)
                        .await;
                }
            });
        }
    });
    (
        format!("https://{address}/jwks.json"),
        ca_file.to_string_lossy().into_owned(),
    )
}

#[tokio::test(flavor = "multi_thread")]
async fn an_https_jwks_is_trusted_through_the_configured_ca_and_readiness_waits_for_its_keys() {
    let env = Env::new(&["public.user.message.events"]).await;
    env.write_default_routes();
    let dir = std::env::temp_dir().join(unique("jwks-tls"));
    std::fs::create_dir_all(&dir).unwrap();
    let (url, ca_file) = https_jwks_server(json!({"keys": [jwk("a", "k1")]}), &dir).await;
    let body = json!({"user_id":"x","email":"e","message":"m","timestamp":"t"});
    let es = vec![(
        "authorization",
        format!("Bearer {}", es256("a", Some("k1"), &claims("es-user"))),
    )];

    // With the CA: keys load, the gateway is ready and ES256 tokens are accepted.
    let mut trusting = env.config();
    trusting.service.auth.jwks_url = Some(url.clone());
    trusting.service.auth.jwks_ca_file = Some(ca_file);
    let app = spawn_app(trusting).await;
    let ready = eventually(Duration::from_secs(30), || async {
        app.client
            .get(format!("{}/readyz", app.address))
            .send()
            .await
            .is_ok_and(|r| r.status() == 200)
    })
    .await;
    assert!(ready, "never ready with a trusted HTTPS JWKS");
    assert_eq!(app.post("/api/v1/events/message", &es, &body).await.0, 204);

    // Without it the certificate is not trusted: no key, not ready, ES256 refused (HS256 and
    // the rest of the gateway still work, so only the JWKS check holds readiness back).
    let mut untrusting = env.config();
    untrusting.service.auth.jwks_url = Some(url);
    let app = spawn_app(untrusting).await;
    assert_eq!(app.post("/api/v1/events/message", &es, &body).await.0, 401);
    assert_eq!(
        app.post("/api/v1/events/message", &auth("hs-user"), &body)
            .await
            .0,
        204
    );
    let readiness = app
        .client
        .get(format!("{}/readyz", app.address))
        .send()
        .await
        .unwrap();
    assert_eq!(readiness.status(), 503);
    let report: Value = readiness.json().await.unwrap_or_default();
    assert!(
        report.to_string().contains("jwks"),
        "the failing check is named: {report}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_keyed_retry_after_a_gateway_restart_gets_the_first_answer_and_produces_nothing() {
    // Arrange: a gateway with its own database (the keys table comes with the migrations).
    let env = Env::new(&["public.user.message.events", "internal.media.upload.intent"]).await;
    env.write_default_routes();
    let db = substrate::testing::TestDatabase::create(&env.stack, "idempotency").await;
    let mut settings = env.config();
    settings.backbone.postgres.url = secrecy::SecretString::from(db.url.clone());
    let user = "11111111-2222-3333-4444-666666666666";
    let mut headers = auth(user);
    headers.push(("idempotency-key", "upload-7f3a".to_owned()));
    let body = json!({"file_name":"a.jpg","media_type":"image/jpeg","file_size":10});

    // Act: the first attempt, a restart, the retry; then an unkeyed intent as a sentinel.
    let first = spawn_app(settings.clone()).await;
    let (status, answer) = first
        .post("/api/v1/media/upload-intent", &headers, &body)
        .await;
    assert_eq!(status, 202, "{answer}");
    drop(first);
    let second = spawn_app(settings).await;
    let (retry_status, retried) = second
        .post("/api/v1/media/upload-intent", &headers, &body)
        .await;
    let (reused_status, _) = second
        .post(
            "/api/v1/media/upload-intent",
            &headers,
            &json!({"file_name":"b.jpg","media_type":"image/jpeg","file_size":10}),
        )
        .await;
    let (_, sentinel) = second
        .post("/api/v1/media/upload-intent", &auth(user), &body)
        .await;

    // Assert: the retry answered as the first, the reused key refused, one event per request.
    assert_eq!(retry_status, 202);
    assert_eq!(retried, answer);
    assert_eq!(reused_status, 422);
    let records = env.read_decoded("internal.media.upload.intent", 2).await;
    let ids: Vec<_> = records
        .iter()
        .map(|(_, _, v)| v["request_id"].clone())
        .collect();
    assert_eq!(
        ids,
        [answer["request_id"].clone(), sentinel["request_id"].clone()]
    );
    let stored: i64 = sqlx::query_scalar(
        "select count(*) from gateway.idempotency_keys where user_id = $1 and status = 202",
    )
    .bind(user)
    .fetch_one(&db.pool)
    .await
    .unwrap();
    assert_eq!(stored, 1);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_batch_lands_in_order_on_the_broker_with_one_identity_per_event() {
    // Arrange
    let env = Env::new(&["public.user.message.events"]).await;
    env.write_default_routes();
    let app = spawn_app(env.config()).await;
    let event = |text: &str| json!({"message": text, "timestamp": "2026-12-01T00:00:00Z"});

    // Act: five events, the third without the required `message`.
    let body =
        json!({"events": [event("e0"), event("e1"), {"timestamp": "t"}, event("e3"), event("e4")]});
    let (status, answer) = app
        .post("/api/v1/events/message/batch", &auth("batch-user"), &body)
        .await;

    // Assert: the schema violation reported on its own, the rest produced in order.
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer["accepted"], 4);
    assert_eq!(answer["results"][2]["status"], 400);
    assert!(
        answer["results"][2]["message"]
            .as_str()
            .unwrap_or_default()
            .contains("message"),
        "{answer}"
    );
    let records = env.read_decoded("public.user.message.events", 4).await;
    let texts: Vec<_> = records
        .iter()
        .map(|(_, _, v)| v["message"].clone())
        .collect();
    assert_eq!(texts, [json!("e0"), json!("e1"), json!("e3"), json!("e4")]);
    assert!(records.iter().all(|(_, _, v)| v["user_id"] == "batch-user"));
    let ids: std::collections::HashSet<_> = records
        .iter()
        .filter_map(|(m, _, _)| m.event_id().map(str::to_owned))
        .collect();
    assert_eq!(ids.len(), 4, "one ce_id per event");
}
