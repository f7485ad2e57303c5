//! Optional bearer-token authentication of every endpoint that serves
//! market data or server internals: `/ws`, `/api/*` and `/metrics`.
//!
//! `server.rs` puts [`require_token`] in front of all of them as one layer;
//! `/healthz` and the dashboard's files stay public. A request carries its
//! token as `Authorization: Bearer T` or `?token=T` (a browser cannot set
//! headers on a WebSocket). Tokens are compared in constant time and never
//! logged: only whether a token was present is. A missing and a wrong
//! token get the same 401, byte for byte.

use crate::stats::{Refusal, Stats};
use axum::extract::{ConnectInfo, Query, Request, State};
use axum::http::{StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use std::net::SocketAddr;
use std::sync::Arc;
use subtle::ConstantTimeEq;

/// The configured tokens; empty means authentication is off. Shared, so
/// that the per-request copy the middleware gets is a reference count.
#[derive(Clone, Default)]
pub struct Tokens(Arc<[String]>);

impl std::fmt::Debug for Tokens {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Tokens({} configured, values redacted)", self.0.len())
    }
}

impl Tokens {
    pub fn new(tokens: Vec<String>) -> Self {
        Self(tokens.into())
    }

    pub fn enabled(&self) -> bool {
        !self.0.is_empty()
    }

    /// True when `presented` equals one of the tokens. Every configured
    /// token is compared in full so timing does not reveal which matched.
    pub fn accepts(&self, presented: Option<&str>) -> bool {
        if !self.enabled() {
            return true;
        }
        let Some(presented) = presented else {
            return false;
        };
        self.0.iter().fold(false, |found, token| {
            found | bool::from(token.as_bytes().ct_eq(presented.as_bytes()))
        })
    }
}

/// The token a request carries: `Authorization: Bearer T` first, then
/// `?token=T`.
pub fn presented_token<'a>(
    authorization: Option<&'a str>,
    query_token: Option<&'a str>,
) -> Option<&'a str> {
    authorization
        .and_then(|h| {
            h.strip_prefix("Bearer ")
                .or_else(|| h.strip_prefix("bearer "))
        })
        .map(str::trim)
        .or(query_token)
}

/// What [`require_token`] needs: the tokens, and where to count refusals.
#[derive(Clone)]
pub struct TokenGate {
    pub tokens: Tokens,
    pub stats: Arc<Stats>,
}

/// The query parameter the gate reads; the handler reads the others.
#[derive(serde::Deserialize)]
struct TokenQuery {
    token: Option<String>,
}

/// Middleware: with tokens configured, a request that does not carry an
/// accepted token gets [`unauthorized`] and never reaches its handler.
pub async fn require_token(
    State(gate): State<TokenGate>,
    request: Request,
    next: Next,
) -> Response {
    if !gate.tokens.enabled() {
        return next.run(request).await;
    }
    let authorization = request
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|h| h.to_str().ok());
    let query = Query::<TokenQuery>::try_from_uri(request.uri()).ok();
    let query_token = query.as_ref().and_then(|q| q.token.as_deref());
    let token_present = authorization.is_some() || query_token.is_some();
    if gate
        .tokens
        .accepts(presented_token(authorization, query_token))
    {
        return next.run(request).await;
    }
    gate.stats.outcomes.count_refusal(Refusal::Unauthorized);
    let peer = request
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|info| info.0);
    // The path only: the query string may hold the token.
    tracing::info!(
        peer = peer.map(tracing::field::display),
        reason = Refusal::Unauthorized.label(),
        path = request.uri().path(),
        token_present,
        "request refused: unauthorized"
    );
    unauthorized()
}

/// The one refusal, whatever was wrong with the token, so that it tells a
/// guesser nothing.
fn unauthorized() -> Response {
    (
        StatusCode::UNAUTHORIZED,
        [(header::WWW_AUTHENTICATE, "Bearer")],
        "unauthorized: send Authorization: Bearer TOKEN or ?token=TOKEN\n",
    )
        .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn no_tokens_means_open() {
        assert!(Tokens::default().accepts(None));
    }

    #[test]
    fn only_a_configured_token_is_accepted() {
        let tokens = Tokens::new(vec!["s3cret".into(), "other".into()]);
        assert!(tokens.accepts(Some("other")));
        assert!(!tokens.accepts(Some("s3cre")));
        assert!(!tokens.accepts(None));
        assert!(!format!("{tokens:?}").contains("s3cret"));
    }

    #[test]
    fn header_wins_over_query() {
        assert_eq!(presented_token(Some("Bearer abc"), Some("q")), Some("abc"));
        assert_eq!(presented_token(None, Some("q")), Some("q"));
        assert_eq!(presented_token(Some("Basic x"), None), None);
    }
}
