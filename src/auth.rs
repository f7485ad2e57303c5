//! Optional bearer-token authentication of the WebSocket handshake.
//! Tokens are compared in constant time and never logged: only whether a
//! token was present and accepted is.

use subtle::ConstantTimeEq;

/// The configured tokens; empty means authentication is off.
#[derive(Clone, Default)]
pub struct Tokens(Vec<String>);

impl std::fmt::Debug for Tokens {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Tokens({} configured, values redacted)", self.0.len())
    }
}

impl Tokens {
    pub fn new(tokens: Vec<String>) -> Self {
        Self(tokens)
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

/// The token a handshake carries: `Authorization: Bearer T` first, then
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
