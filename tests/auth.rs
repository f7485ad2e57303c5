//! What `--token` protects, against the real server. Every endpoint that
//! serves market data or server internals (`/ws`, `/api/symbols`,
//! `/api/stats`, `/metrics`) answers a missing or wrong token with the same
//! 401 and `WWW-Authenticate: Bearer`, and the right token by header or by
//! query with the data; `/healthz` and the dashboard's files stay public;
//! without `--token` nothing is asked. Then the CORS rule `--allowed-origin`
//! sets for the HTTP API: allowed origins get CORS headers (the preflight
//! without a token), others none.

mod common;

use common::{Client, TestServer, start_server};
use reqwest::header::{self, HeaderMap};
use reqwest::{Method, StatusCode};

const TOKEN: &str = "tf-auth-4c1e9b";
/// The HTTP endpoints with data; `/ws` is tested as a WebSocket as well.
const DATA: [&str; 4] = [
    "/api/symbols",
    "/api/ticks?sym=AAPL",
    "/api/stats",
    "/metrics",
];
const PUBLIC: [&str; 4] = ["/healthz", "/", "/js/main.js", "/css/app.css"];
const DASHBOARD_ORIGIN: &str = "https://dash.example.com";

/// How a request presents its token.
#[derive(Debug, Clone, Copy)]
enum Presented<'a> {
    Nothing,
    Header(&'a str),
    Query(&'a str),
}

struct Answer {
    status: StatusCode,
    headers: HeaderMap,
    body: Vec<u8>,
}

async fn request(
    server: &TestServer,
    method: Method,
    path: &str,
    presented: Presented<'_>,
    extra: &[(&str, &str)],
) -> Answer {
    let url = match presented {
        Presented::Query(token) => {
            let joiner = if path.contains('?') { '&' } else { '?' };
            server.http_url(&format!("{path}{joiner}token={token}"))
        }
        _ => server.http_url(path),
    };
    let mut request = reqwest::Client::new().request(method, url);
    if let Presented::Header(value) = presented {
        request = request.header(header::AUTHORIZATION, value);
    }
    for (name, value) in extra {
        request = request.header(*name, *value);
    }
    let response = request.send().await.expect("an HTTP answer");
    Answer {
        status: response.status(),
        headers: response.headers().clone(),
        body: response.bytes().await.expect("a body").to_vec(),
    }
}

async fn get(server: &TestServer, path: &str, presented: Presented<'_>) -> Answer {
    request(server, Method::GET, path, presented, &[]).await
}

/// The answer as one comparable text, without the `date` header.
fn shape(answer: &Answer) -> String {
    let mut headers: Vec<String> = answer
        .headers
        .iter()
        .filter(|(name, _)| *name != header::DATE)
        .map(|(name, value)| format!("{name}: {value:?}"))
        .collect();
    headers.sort();
    format!(
        "{}\n{}\n{}",
        answer.status,
        headers.join("\n"),
        String::from_utf8_lossy(&answer.body)
    )
}

#[tokio::test]
async fn every_data_endpoint_refuses_a_missing_or_wrong_token_with_the_same_401() {
    let server = start_server(&["--rate", "50", "--token", TOKEN]).await;
    let wrong_bearer = format!("Bearer {}", &TOKEN[..TOKEN.len() - 1]);
    let refusals = [
        Presented::Nothing,
        Presented::Header(&wrong_bearer),
        Presented::Header("Basic dGY6dGY="),
        Presented::Query("tf-wrong"),
        Presented::Query(""),
    ];
    let mut refused = 0;
    for path in ["/ws"].into_iter().chain(DATA) {
        let missing = get(&server, path, Presented::Nothing).await;
        assert_eq!(missing.status, StatusCode::UNAUTHORIZED, "{path}");
        assert_eq!(
            missing.headers[header::WWW_AUTHENTICATE],
            "Bearer",
            "{path}"
        );
        refused += 1;
        for presented in refusals {
            let answer = get(&server, path, presented).await;
            assert_eq!(
                shape(&answer),
                shape(&missing),
                "{path} with {presented:?}: the same 401 as without a token"
            );
            refused += 1;
        }
    }
    let stats = server.get_json("/api/stats").await;
    assert_eq!(stats["requests_unauthorized"], refused);
    server.shutdown().await;
}

#[tokio::test]
async fn the_right_token_opens_every_data_endpoint_by_header_and_by_query() {
    let server = start_server(&["--rate", "50", "--token", &format!("other,{TOKEN}")]).await;
    let bearer = format!("Bearer {TOKEN}");
    for path in DATA {
        for presented in [Presented::Header(&bearer), Presented::Query(TOKEN)] {
            let answer = get(&server, path, presented).await;
            assert_eq!(answer.status, StatusCode::OK, "{path} with {presented:?}");
            assert!(!answer.body.is_empty(), "{path} with {presented:?}");
        }
    }
    let url = server.ws_url();
    Client::connect_with(&url, &[("authorization", &bearer)])
        .await
        .expect("/ws with the token in a header");
    Client::connect_with(&format!("{url}?token={TOKEN}"), &[])
        .await
        .expect("/ws with the token in the query");
    let msgpack = Client::connect_with(&format!("{url}?encoding=msgpack&token={TOKEN}"), &[])
        .await
        .expect("/ws with the token beside another parameter");
    assert_eq!(msgpack.hello["encoding"], "msgpack");
    server.shutdown_after(msgpack).await;
}

#[tokio::test]
async fn health_and_the_dashboard_stay_public_with_a_token() {
    let server = start_server(&["--rate", "50", "--token", TOKEN]).await;
    for path in PUBLIC {
        let answer = get(&server, path, Presented::Nothing).await;
        assert_eq!(answer.status, StatusCode::OK, "{path}");
    }
    server.shutdown().await;
}

#[tokio::test]
async fn without_a_token_configured_every_endpoint_answers_as_before() {
    let server = start_server(&["--rate", "50"]).await;
    for path in DATA.into_iter().chain(PUBLIC) {
        for presented in [
            Presented::Nothing,
            Presented::Header("Bearer anything"),
            Presented::Query("anything"),
        ] {
            let answer = get(&server, path, presented).await;
            assert_eq!(answer.status, StatusCode::OK, "{path} with {presented:?}");
            assert!(
                !answer.headers.contains_key(header::WWW_AUTHENTICATE),
                "{path}"
            );
        }
    }
    Client::connect_with(&server.ws_url(), &[])
        .await
        .expect("/ws without a token");
    Client::connect_with(&format!("{}?token=anything", server.ws_url()), &[])
        .await
        .expect("/ws ignores a token nobody asked for");
    server.shutdown().await;
}

/// A browser's preflight for `GET path` with an `Authorization` header.
async fn preflight(server: &TestServer, path: &str, origin: &str) -> Answer {
    request(
        server,
        Method::OPTIONS,
        path,
        Presented::Nothing,
        &[
            ("origin", origin),
            ("access-control-request-method", "GET"),
            ("access-control-request-headers", "authorization"),
        ],
    )
    .await
}

fn allowed_origin(answer: &Answer) -> Option<&str> {
    answer
        .headers
        .get(header::ACCESS_CONTROL_ALLOW_ORIGIN)
        .map(|v| v.to_str().expect("ASCII"))
}

#[tokio::test]
async fn an_allowed_origin_gets_cors_headers_and_its_preflight_needs_no_token() {
    let server = start_server(&[
        "--rate",
        "50",
        "--token",
        TOKEN,
        "--allowed-origin",
        DASHBOARD_ORIGIN,
    ])
    .await;
    let bearer = format!("Bearer {TOKEN}");
    for path in DATA {
        let answer = preflight(&server, path, DASHBOARD_ORIGIN).await;
        assert!(answer.status.is_success(), "{path}: {}", answer.status);
        assert_eq!(allowed_origin(&answer), Some(DASHBOARD_ORIGIN), "{path}");
        let allowed_headers = answer.headers[header::ACCESS_CONTROL_ALLOW_HEADERS]
            .to_str()
            .unwrap()
            .to_ascii_lowercase();
        assert!(allowed_headers.contains("authorization"), "{path}");
        let allowed_methods = answer.headers[header::ACCESS_CONTROL_ALLOW_METHODS]
            .to_str()
            .unwrap();
        assert!(allowed_methods.contains("GET"), "{path}");

        let origin = [("origin", DASHBOARD_ORIGIN)];
        let data = request(
            &server,
            Method::GET,
            path,
            Presented::Header(&bearer),
            &origin,
        )
        .await;
        assert_eq!(data.status, StatusCode::OK, "{path}");
        assert_eq!(allowed_origin(&data), Some(DASHBOARD_ORIGIN), "{path}");
        // The page can read the refusal too, and so knows to ask for a token.
        let refusal = request(&server, Method::GET, path, Presented::Nothing, &origin).await;
        assert_eq!(refusal.status, StatusCode::UNAUTHORIZED, "{path}");
        assert_eq!(allowed_origin(&refusal), Some(DASHBOARD_ORIGIN), "{path}");
    }
    server.shutdown().await;
}

#[tokio::test]
async fn other_origins_get_no_cors_headers_and_without_a_list_nobody_does() {
    let listed = start_server(&["--rate", "50", "--allowed-origin", DASHBOARD_ORIGIN]).await;
    let unlisted = start_server(&["--rate", "50"]).await;
    for path in DATA {
        for (server, origin) in [
            (&listed, "https://evil.example"),
            (&listed, "https://dash.example.com.evil.example"),
            (&unlisted, DASHBOARD_ORIGIN),
        ] {
            let answer = preflight(server, path, origin).await;
            assert_eq!(
                allowed_origin(&answer),
                None,
                "{path} preflight from {origin}"
            );
            let origin_header = [("origin", origin)];
            let data = request(
                server,
                Method::GET,
                path,
                Presented::Nothing,
                &origin_header,
            )
            .await;
            assert_eq!(data.status, StatusCode::OK, "{path}");
            assert_eq!(allowed_origin(&data), None, "{path} from {origin}");
        }
    }
    listed.shutdown().await;
    unlisted.shutdown().await;
}
