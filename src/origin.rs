//! The `--allowed-origin` policy for browser clients: checked on the
//! WebSocket handshake by `server.rs` (403 before the upgrade), and the CORS
//! rule of the HTTP API ([`AllowedOrigins::cors_layer`]).
//!
//! Browsers always send `Origin` on a WebSocket handshake, so the list
//! decides which web pages may open a feed. Rules, in order:
//! - no list configured: every origin is allowed (the default, so scripts,
//!   tools and dashboards served elsewhere keep working);
//! - no `Origin` header: allowed, since it is not a browser (and a
//!   non-browser client could send any origin it liked anyway);
//! - the origin is in the list, or the list holds `*`: allowed;
//! - the page was served by this server (origin host equals `Host`):
//!   allowed, so the built-in dashboard always works;
//! - otherwise refused.
//!
//! The same rules decide which pages on other origins may read `/api/*`
//! and `/metrics` from a script. Without a list there are no CORS headers
//! at all, so browsers let only the pages this server serves read them.

use axum::http::{Method, Uri, header};
use std::time::Duration;
use tower_http::cors::{AllowOrigin, CorsLayer};

/// How long a browser may cache a preflight's answer: saves a round trip
/// per request for ten minutes, short enough that a changed list applies
/// soon after a restart.
const CORS_MAX_AGE: Duration = Duration::from_secs(600);

/// Allowed browser origins, normalised (lower case, no trailing slash).
#[derive(Debug, Clone, Default)]
pub struct AllowedOrigins(Vec<String>);

/// A `--allowed-origin` value that is not an origin.
#[derive(Debug, thiserror::Error)]
#[error("--allowed-origin {value:?}: expected * or scheme://host[:port], e.g. https://example.com")]
pub struct OriginError {
    pub value: String,
}

impl AllowedOrigins {
    /// Validates and normalises each origin.
    pub fn parse<S: AsRef<str>>(values: &[S]) -> Result<Self, OriginError> {
        let mut origins = Vec::with_capacity(values.len());
        for value in values {
            let raw = value.as_ref().trim();
            if raw.is_empty() {
                continue;
            }
            let normalised = normalise(raw);
            if normalised != "*" && !is_origin(&normalised) {
                return Err(OriginError {
                    value: raw.to_string(),
                });
            }
            origins.push(normalised);
        }
        Ok(Self(origins))
    }

    pub fn enabled(&self) -> bool {
        !self.0.is_empty()
    }

    /// True when a handshake with this `Origin` and `Host` may upgrade.
    pub fn allows(&self, origin: Option<&str>, host: Option<&str>) -> bool {
        let Some(origin) = origin else { return true };
        if !self.enabled() {
            return true;
        }
        let origin = normalise(origin);
        if self
            .0
            .iter()
            .any(|allowed| allowed == "*" || *allowed == origin)
        {
            return true;
        }
        let origin_host = origin.split_once("://").map(|(_, authority)| authority);
        matches!((origin_host, host), (Some(a), Some(b)) if a.eq_ignore_ascii_case(b.trim()))
    }

    /// CORS for the HTTP API under these rules: an allowed origin gets
    /// `Access-Control-Allow-Origin` (preflight included, with
    /// `Authorization` allowed), any other none. `None` without a list.
    pub fn cors_layer(&self) -> Option<CorsLayer> {
        if !self.enabled() {
            return None;
        }
        let origins = self.clone();
        let allowed = AllowOrigin::predicate(move |origin, request| {
            let host = request
                .headers
                .get(header::HOST)
                .and_then(|h| h.to_str().ok());
            origin
                .to_str()
                .is_ok_and(|origin| origins.allows(Some(origin), host))
        });
        Some(
            CorsLayer::new()
                .allow_origin(allowed)
                .allow_methods([Method::GET, Method::HEAD])
                .allow_headers([header::AUTHORIZATION])
                .max_age(CORS_MAX_AGE),
        )
    }
}

fn normalise(origin: &str) -> String {
    origin.trim().trim_end_matches('/').to_ascii_lowercase()
}

/// `http(s)://host[:port]` and nothing else.
fn is_origin(text: &str) -> bool {
    let Ok(uri) = text.parse::<Uri>() else {
        return false;
    };
    matches!(uri.scheme_str(), Some("http" | "https"))
        && uri
            .authority()
            .is_some_and(|a| !a.host().is_empty() && !a.as_str().contains('@'))
        && matches!(uri.path(), "" | "/")
        && uri.query().is_none()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn list(values: &[&str]) -> AllowedOrigins {
        AllowedOrigins::parse(values).unwrap()
    }

    #[test]
    fn without_a_list_every_origin_is_allowed() {
        assert!(AllowedOrigins::default().allows(Some("https://evil.example"), Some("feed:8080")));
    }

    #[test]
    fn listed_origins_match_whatever_their_case_or_trailing_slash() {
        let origins = list(&["https://Dash.Example.com/", "http://localhost:3000"]);
        assert!(origins.allows(Some("https://dash.example.com"), None));
        assert!(origins.allows(Some("http://localhost:3000"), None));
        assert!(!origins.allows(Some("http://localhost:3001"), None));
        assert!(!origins.allows(Some("https://dash.example.com.evil.net"), None));
        assert!(!origins.allows(Some("null"), None));
    }

    #[test]
    fn clients_without_an_origin_and_same_origin_pages_are_allowed() {
        let origins = list(&["https://dash.example.com"]);
        assert!(origins.allows(None, Some("anything")));
        assert!(origins.allows(Some("http://127.0.0.1:8080"), Some("127.0.0.1:8080")));
        assert!(!origins.allows(Some("http://127.0.0.1:9999"), Some("127.0.0.1:8080")));
    }

    #[test]
    fn a_star_allows_everything() {
        assert!(list(&["*"]).allows(Some("https://any.where"), None));
    }

    #[test]
    fn cors_applies_only_with_a_list() {
        assert!(AllowedOrigins::default().cors_layer().is_none());
        assert!(list(&["https://dash.example.com"]).cors_layer().is_some());
    }

    #[test]
    fn values_that_are_not_origins_are_refused_with_the_flag_name() {
        for bad in [
            "example.com",
            "ftp://example.com",
            "https://example.com/path",
            "https://u@example.com",
        ] {
            let error = AllowedOrigins::parse(&[bad]).unwrap_err().to_string();
            assert!(error.starts_with("--allowed-origin"), "{error}");
        }
    }
}
