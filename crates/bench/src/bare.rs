//! `bench bare-server PORT [TOPIC]`: the least an HTTP ingress can do, as its own process, to
//! split the gateway's cost into framework, broker and the gateway's own work. An axum route
//! with the gateway's own JWT check (its `JwtVerifier`, same settings) and, when TOPIC is
//! given, an acknowledged produce of pre-encoded Avro bytes; no JSON parsing, no allowlist, no
//! encoding per request.

use std::sync::Arc;

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::{get, post};
use substrate::kafka::{EventPublisher, KafkaPublisher, OutboundRecord};

struct Bare {
    verifier: api_gateway::auth::JwtVerifier,
    produce: Option<(KafkaPublisher, String, Vec<u8>)>,
}

async fn publish(State(bare): State<Arc<Bare>>, headers: HeaderMap) -> StatusCode {
    let token = headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "));
    let Some(token) = token else {
        return StatusCode::UNAUTHORIZED;
    };
    if bare.verifier.verify(token).await.is_err() {
        return StatusCode::UNAUTHORIZED;
    }
    if let Some((publisher, topic, bytes)) = &bare.produce
        && publisher
            .publish(OutboundRecord::new(topic.clone(), bytes.clone()))
            .await
            .is_err()
    {
        return StatusCode::SERVICE_UNAVAILABLE;
    }
    StatusCode::NO_CONTENT
}

/// Serves until killed.
pub async fn serve(port: u16, topic: Option<String>) -> anyhow::Result<()> {
    let auth = api_gateway::configuration::AuthSettings {
        jwt_secret: Some(secrecy::SecretString::from(crate::JWT_SECRET)),
        ..Default::default()
    };
    let verifier = api_gateway::auth::JwtVerifier::new(&auth).map_err(anyhow::Error::msg)?;
    let stack = substrate::testing::TestStack::from_env();
    let produce = match topic {
        Some(topic) => {
            let codec = crate::message_codec(&stack).await?;
            let bytes = codec.encode_json(&topic, &crate::message_body()).await?;
            Some((KafkaPublisher::new(&stack.kafka)?, topic, bytes))
        }
        None => None,
    };
    let app = axum::Router::new()
        .route("/api/v1/events/message", post(publish))
        .route("/readyz", get(|| async { StatusCode::OK }))
        .with_state(Arc::new(Bare { verifier, produce }));
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", port)).await?;
    axum::serve(listener, app).await?;
    Ok(())
}
