//! Which `Host` a request may name, on every endpoint the gateway serves (the WebSocket,
//! `@connections`, the SQS endpoint, the demo and `/_local/*`): `localhost` or a name under
//! `.localhost`, an IP address, or a name given with `--allowed-host` — what Vite's and webpack's
//! development servers allow since their DNS-rebinding fixes.
//!
//! A page on another site that reaches the gateway through DNS rebinding (its name made to resolve
//! to 127.0.0.1) is same-origin with the gateway as far as the browser knows, but the browser names
//! the page's own host in `Host`: refused here, such a page can read nothing and post nothing, even
//! with the well-known `local`/`local` key pair. An IP address or `localhost` cannot be an attacker's
//! name. A request without a `Host` (no browser sends one) is let through.

use std::net::IpAddr;

use axum::extract::{Request, State};
use axum::http::{StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

/// The names besides `localhost` and IP addresses that requests may give as their `Host`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct AllowedHosts {
    /// Lower-case names; one starting with `.` allows the name after it and every name below it.
    names: Vec<String>,
}

impl AllowedHosts {
    /// The names given with `--allowed-host`, each a host name (`myapp.test`) or a domain with a
    /// leading dot (`.myapp.test`, for it and every name below it).
    pub fn new(names: impl IntoIterator<Item = String>) -> Result<Self, String> {
        let names = names
            .into_iter()
            .map(|name| {
                let name = name.trim().to_ascii_lowercase();
                let bare = name.strip_prefix('.').unwrap_or(&name);
                let valid = !bare.is_empty()
                    && bare.len() <= 253
                    && bare.split('.').all(|label| {
                        (1..=63).contains(&label.len())
                            && label.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
                    });
                if valid { Ok(name) } else { Err(format!("{name:?} is not a host name")) }
            })
            .collect::<Result<_, _>>()?;
        Ok(Self { names })
    }

    /// Why a request naming `host` (a `Host` header's value) is refused; `None` when it is served.
    pub fn refusal(&self, host: Option<&str>) -> Option<String> {
        let host = host?;
        let Ok(authority) = host.parse::<axum::http::uri::Authority>() else {
            return Some(format!("the Host header {host:?} is not a host"));
        };
        let name = authority.host().trim_end_matches('.').to_ascii_lowercase();
        if name.trim_start_matches('[').trim_end_matches(']').parse::<IpAddr>().is_ok()
            || name == "localhost"
            || name.ends_with(".localhost")
            || self.names.iter().any(|allowed| match allowed.strip_prefix('.') {
                Some(domain) => name == domain || name.ends_with(allowed.as_str()),
                None => name == *allowed,
            })
        {
            return None;
        }
        Some(format!(
            "Host {host} is not an IP address, localhost, or a name given with --allowed-host: a page reaching \
             the gateway under another name (DNS rebinding) is refused; start the gateway with \
             --allowed-host {name} if that name is yours"
        ))
    }
}

/// Refuses a request whose `Host` is not allowed with 403 `{"message":"Forbidden: …"}`, before any
/// endpoint reads it; the reason also goes to the gateway's log.
pub async fn guard(State(allowed): State<AllowedHosts>, request: Request, next: Next) -> Response {
    let host = request
        .headers()
        .get(header::HOST)
        .and_then(|host| host.to_str().ok())
        .map(str::to_owned)
        .or_else(|| request.uri().authority().map(ToString::to_string));
    match allowed.refusal(host.as_deref()) {
        None => next.run(request).await,
        Some(why) => {
            tracing::warn!(path = %request.uri().path(), "refused: {why}");
            let body = serde_json::json!({ "message": format!("Forbidden: {why}") }).to_string();
            (StatusCode::FORBIDDEN, [(header::CONTENT_TYPE, "application/json")], body).into_response()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loopback_names_ip_addresses_and_names_given_are_served_and_any_other_name_is_refused() {
        let allowed = AllowedHosts::new(["myapp.test".to_owned(), ".lan".to_owned()]).expect("names");
        for host in [
            "127.0.0.1:3001",
            "localhost:3001",
            "LOCALHOST",
            "app.localhost:3001",
            "[::1]:3001",
            "192.168.1.20:3001",
            "myapp.test:3001",
            "MyApp.Test",
            "lan",
            "devbox.lan:9324",
        ] {
            assert_eq!(allowed.refusal(Some(host)), None, "{host}");
        }
        assert_eq!(allowed.refusal(None), None, "no Host: not a browser");
        for host in [
            "evil.example:3001",
            "localhost.evil.example",
            "127.0.0.1.nip.io",
            "myapp.test.evil",
            "notlan",
            "a b",
        ] {
            let why = allowed.refusal(Some(host)).expect(host);
            assert!(why.contains(host) || why.contains("not a host"), "{host}: {why}");
        }
        assert!(AllowedHosts::new(["http://x".to_owned()]).is_err());
        assert!(AllowedHosts::new(["".to_owned()]).is_err());
    }
}
