//! SigV4 verification for `@connections`, as API Gateway does it for `execute-api`.
//!
//! Every management call must be signed with the credentials the gateway was given, for its region
//! and the service `execute-api`; the answers to unsigned, badly signed, expired or wrongly scoped
//! calls are API Gateway's own (403 with `x-amzn-errortype`), and a signature that does not match says
//! what canonical request and string to sign were expected, as API Gateway's answer does.
//!
//! One departure, logged at `warn` each time: curl releases from before mid-2024 (Debian 12's 7.88
//! among them) sign the request path as they send it (`/@connections/…`), where AWS expects it
//! URI-encoded once more (`/%40connections/…`). API Gateway refuses those signatures; this gateway
//! accepts them with a warning, so that the `curl --aws-sigv4` most Linux distributions ship can still
//! reach a connection.

use hmac::{Hmac, KeyInit, Mac};
use http::request::Parts;
use sha2::{Digest, Sha256};
use time::OffsetDateTime;
use time::macros::format_description;

use crate::settings::Credentials;

const ALGORITHM: &str = "AWS4-HMAC-SHA256";
pub const SERVICE: &str = "execute-api";
/// How far a request's `X-Amz-Date` may be from the gateway's clock, either way.
const MAX_SKEW: time::Duration = time::Duration::minutes(5);

/// Who may call, and where.
#[derive(Debug)]
pub struct Signatures {
    credentials: Credentials,
    region: String,
    /// The service signatures must be scoped to: `execute-api` for `@connections`, `sqs` for the
    /// queue endpoint.
    service: &'static str,
    /// The last signing key derived, with its date: it changes once a day, and deriving it is four
    /// HMACs on every one of the worker's posts otherwise.
    key: std::sync::Mutex<Option<(String, Vec<u8>)>>,
}

/// How a request passed.
#[derive(Debug, PartialEq, Eq)]
pub enum Verified {
    Signed,
    /// Signed over the path as sent, as older curl releases do: API Gateway would refuse it.
    UnencodedPath {
        expected_canonical_uri: String,
    },
}

/// Why a request was refused: each is a 403 with API Gateway's error type and message.
#[derive(Debug, PartialEq, Eq)]
pub enum Denied {
    /// No `Authorization` header.
    Missing,
    /// An `Authorization` header without what SigV4 needs.
    Incomplete(String),
    /// An access key the gateway does not know.
    UnknownAccessKey,
    /// A signature for another region or service, or older (or newer) than five minutes.
    Invalid(String),
    /// The signature does not match.
    Mismatch { canonical_request: String, string_to_sign: String },
}

impl Denied {
    /// The `x-amzn-errortype` AWS answers with.
    pub fn error_type(&self) -> &'static str {
        match self {
            Self::Missing => "MissingAuthenticationTokenException",
            Self::Incomplete(_) => "IncompleteSignatureException",
            Self::UnknownAccessKey => "UnrecognizedClientException",
            Self::Invalid(_) | Self::Mismatch { .. } => "InvalidSignatureException",
        }
    }

    pub fn message(&self) -> String {
        match self {
            Self::Missing => "Missing Authentication Token".into(),
            Self::Incomplete(why) | Self::Invalid(why) => why.clone(),
            Self::UnknownAccessKey => "The security token included in the request is invalid.".into(),
            Self::Mismatch { canonical_request, string_to_sign } => format!(
                "The request signature we calculated does not match the signature you provided. Check \
                 your AWS Secret Access Key and signing method. Consult the service documentation for \
                 details.\n\nThe Canonical String for this request should have been\n'{canonical_request}'\
                 \n\nThe String-to-Sign should have been\n'{string_to_sign}'\n"
            ),
        }
    }
}

/// The parts of an `Authorization: AWS4-HMAC-SHA256 Credential=…, SignedHeaders=…, Signature=…`.
struct Authorization<'a> {
    access_key_id: &'a str,
    date: &'a str,
    region: &'a str,
    service: &'a str,
    terminator: &'a str,
    signed_headers: Vec<&'a str>,
    signature: &'a str,
}

fn parse_authorization(value: &str) -> Result<Authorization<'_>, Denied> {
    let incomplete = |why: &str| Denied::Incomplete(format!("{why} Authorization={value}"));
    let Some(fields) = value.strip_prefix(ALGORITHM).filter(|rest| rest.starts_with(' ')) else {
        return Err(incomplete(&format!("Authorization header requires the algorithm {ALGORITHM}.")));
    };
    let (mut credential, mut signed_headers, mut signature) = (None, None, None);
    for field in fields.split(',').map(str::trim) {
        match field.split_once('=') {
            Some(("Credential", v)) => credential = Some(v),
            Some(("SignedHeaders", v)) => signed_headers = Some(v),
            Some(("Signature", v)) => signature = Some(v),
            _ => {}
        }
    }
    let mut missing = String::new();
    for (name, part) in
        [("Credential", credential), ("Signature", signature), ("SignedHeaders", signed_headers)]
    {
        if part.is_none_or(str::is_empty) {
            missing.push_str(&format!("Authorization header requires '{name}' parameter. "));
        }
    }
    let (Some(credential), Some(signed_headers), Some(signature)) = (credential, signed_headers, signature)
    else {
        return Err(incomplete(&missing));
    };
    if !missing.is_empty() {
        return Err(incomplete(&missing));
    }
    let scope: Vec<&str> = credential.split('/').collect();
    let [access_key_id, date, region, service, terminator] = scope[..] else {
        return Err(incomplete(&format!(
            "Credential should be scoped to a valid region, and to 'accessKeyId/date/region/service/aws4_request', not '{credential}'."
        )));
    };
    Ok(Authorization {
        access_key_id,
        date,
        region,
        service,
        terminator,
        signed_headers: signed_headers.split(';').collect(),
        signature,
    })
}

impl Signatures {
    /// The signatures `@connections` takes (service `execute-api`).
    pub fn new(credentials: Credentials, region: String) -> Self {
        Self::for_service(credentials, region, SERVICE)
    }

    pub fn for_service(credentials: Credentials, region: String, service: &'static str) -> Self {
        Self { credentials, region, service, key: std::sync::Mutex::default() }
    }

    /// Checks `parts` and `body` against the credentials, at `now`.
    pub fn verify(&self, parts: &Parts, body: &[u8], now: OffsetDateTime) -> Result<Verified, Denied> {
        let header = |name: &str| parts.headers.get(name).and_then(|v| v.to_str().ok());
        let Some(authorization) = header("authorization") else {
            return Err(Denied::Missing);
        };
        let auth = parse_authorization(authorization)?;
        if auth.access_key_id != self.credentials.access_key_id {
            return Err(Denied::UnknownAccessKey);
        }
        let Some(amz_date) = header("x-amz-date") else {
            return Err(Denied::Incomplete(format!(
                "Authorization header requires existence of either a 'X-Amz-Date' or a 'Date' header. Authorization={authorization}"
            )));
        };
        let signed_at = time::PrimitiveDateTime::parse(
            amz_date,
            format_description!("[year][month][day]T[hour][minute][second]Z"),
        )
        .map_err(|_| {
            Denied::Incomplete(format!("Date must be in ISO-8601 'basic format'. Got '{amz_date}'."))
        })?
        .assume_utc();
        if signed_at < now - MAX_SKEW {
            return Err(Denied::Invalid(format!(
                "Signature expired: {amz_date} is now earlier than {} ({} - 5 min.)",
                basic(now - MAX_SKEW),
                basic(now)
            )));
        }
        if signed_at > now + MAX_SKEW {
            return Err(Denied::Invalid(format!(
                "Signature not yet current: {amz_date} is still later than {} ({} + 5 min.)",
                basic(now + MAX_SKEW),
                basic(now)
            )));
        }
        if auth.region != self.region {
            return Err(Denied::Invalid(format!(
                "Credential should be scoped to a valid region, not '{}'. ",
                auth.region
            )));
        }
        if auth.service != self.service {
            return Err(Denied::Invalid(format!(
                "Credential should be scoped to correct service: '{}'. ",
                self.service
            )));
        }
        if auth.terminator != "aws4_request" || !amz_date.starts_with(auth.date) {
            return Err(Denied::Invalid(
                "Credential should be scoped with a valid terminator: 'aws4_request', and to the date of X-Amz-Date."
                    .into(),
            ));
        }
        if !auth.signed_headers.contains(&"host") {
            return Err(Denied::Incomplete(format!(
                "'Host' or ':authority' must be a 'SignedHeader' in the AWS Authorization. Authorization={authorization}"
            )));
        }

        let scope = format!("{}/{}/{}/aws4_request", auth.date, self.region, self.service);
        let key = self.signing_key(auth.date);
        let canonical_uri = canonical_uri(parts.uri.path());
        let canonical_request = canonical_request(parts, &canonical_uri, &auth.signed_headers, body);
        let expected = string_to_sign(amz_date, &scope, &canonical_request);
        if signature_matches(&key, &expected, auth.signature) {
            return Ok(Verified::Signed);
        }
        let legacy = canonical_request_with_uri(&canonical_request, parts.uri.path());
        if signature_matches(&key, &string_to_sign(amz_date, &scope, &legacy), auth.signature) {
            return Ok(Verified::UnencodedPath { expected_canonical_uri: canonical_uri });
        }
        Err(Denied::Mismatch { canonical_request, string_to_sign: expected })
    }

    fn signing_key(&self, date: &str) -> Vec<u8> {
        let mut cached = self.key.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some((day, key)) = cached.as_ref()
            && day == date
        {
            return key.clone();
        }
        let secret = format!("AWS4{}", self.credentials.secret_access_key);
        let key = [date, self.region.as_str(), self.service, "aws4_request"]
            .iter()
            .fold(secret.into_bytes(), |key, part| hmac(&key, part.as_bytes()));
        *cached = Some((date.to_owned(), key.clone()));
        key
    }
}

fn hmac(key: &[u8], data: &[u8]) -> Vec<u8> {
    // HMAC takes keys of any length: `new_from_slice` cannot fail for it.
    let mut mac = <Hmac<Sha256> as KeyInit>::new_from_slice(key).unwrap_or_else(|_| unreachable!());
    mac.update(data);
    mac.finalize().into_bytes().to_vec()
}

fn signature_matches(key: &[u8], string_to_sign: &str, signature: &str) -> bool {
    let Ok(given) = hex::decode(signature) else {
        return false;
    };
    let mut mac = <Hmac<Sha256> as KeyInit>::new_from_slice(key).unwrap_or_else(|_| unreachable!());
    mac.update(string_to_sign.as_bytes());
    // Constant time: a mismatch says nothing about how close the guess was.
    mac.verify_slice(&given).is_ok()
}

fn basic(at: OffsetDateTime) -> String {
    at.format(format_description!("[year][month][day]T[hour][minute][second]Z")).unwrap_or_default()
}

fn sha256_hex(data: &[u8]) -> String {
    hex::encode(Sha256::digest(data))
}

/// RFC 3986's unreserved characters stay; every other byte is `%XX`, upper case.
fn uri_encode(text: &[u8], keep_slash: bool) -> String {
    let mut out = String::with_capacity(text.len());
    for &byte in text {
        if byte.is_ascii_alphanumeric() || b"-._~".contains(&byte) || (keep_slash && byte == b'/') {
            out.push(char::from(byte));
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

/// `%XX` escapes decoded; anything else, a malformed escape included, kept as it is.
fn uri_decode(text: &str) -> Vec<u8> {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let escaped = bytes.get(i + 1..i + 3).and_then(|hex| std::str::from_utf8(hex).ok());
        match escaped.and_then(|hex| u8::from_str_radix(hex, 16).ok()) {
            Some(byte) if bytes[i] == b'%' => {
                out.push(byte);
                i += 3;
            }
            _ => {
                out.push(bytes[i]);
                i += 1;
            }
        }
    }
    out
}

/// The path as sent, with `.` and `..` segments resolved, URI-encoded once more: every service but
/// S3 signs the path encoded twice, so a `%3D` in the request line is `%253D` here and `@` is `%40`.
pub fn canonical_uri(path: &str) -> String {
    let mut segments: Vec<&str> = Vec::new();
    for segment in path.split('/').skip(1) {
        match segment {
            "." => {}
            ".." => {
                segments.pop();
            }
            other => segments.push(other),
        }
    }
    let normalized = format!("/{}", segments.join("/"));
    uri_encode(normalized.as_bytes(), true)
}

fn canonical_query(query: Option<&str>) -> String {
    let mut pairs: Vec<(String, String)> = query
        .unwrap_or_default()
        .split('&')
        .filter(|pair| !pair.is_empty())
        .map(|pair| {
            let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
            (uri_encode(&uri_decode(key), false), uri_encode(&uri_decode(value), false))
        })
        .collect();
    pairs.sort();
    pairs.iter().map(|(k, v)| format!("{k}={v}")).collect::<Vec<_>>().join("&")
}

fn canonical_request(parts: &Parts, canonical_uri: &str, signed_headers: &[&str], body: &[u8]) -> String {
    let mut headers = String::new();
    for name in signed_headers {
        let values: Vec<String> = parts
            .headers
            .get_all(*name)
            .iter()
            .map(|value| {
                String::from_utf8_lossy(value.as_bytes()).split_whitespace().collect::<Vec<_>>().join(" ")
            })
            .collect();
        headers.push_str(&format!("{name}:{}\n", values.join(",")));
    }
    format!(
        "{}\n{canonical_uri}\n{}\n{headers}\n{}\n{}",
        parts.method,
        canonical_query(parts.uri.query()),
        signed_headers.join(";"),
        sha256_hex(body)
    )
}

/// The same canonical request with another URI (the second line).
fn canonical_request_with_uri(canonical_request: &str, uri: &str) -> String {
    match canonical_request.split_once('\n') {
        Some((method, rest)) => {
            let rest = rest.split_once('\n').map_or("", |(_, rest)| rest);
            format!("{method}\n{uri}\n{rest}")
        }
        None => canonical_request.to_owned(),
    }
}

fn string_to_sign(amz_date: &str, scope: &str, canonical_request: &str) -> String {
    format!("{ALGORITHM}\n{amz_date}\n{scope}\n{}", sha256_hex(canonical_request.as_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn signatures() -> Signatures {
        Signatures::new(Credentials::default(), "us-east-1".into())
    }

    /// A request signed by the AWS SDK's own signer (not this module) with `service`.
    fn signed(method: &str, uri: &str, body: &'static [u8], service: &str) -> (Parts, &'static [u8]) {
        use aws_sigv4::http_request::{SignableBody, SignableRequest, SigningSettings, sign};
        let credentials = aws_credential_types::Credentials::new("local", "local", None, None, "test");
        let identity = credentials.into();
        let params = aws_sigv4::sign::v4::SigningParams::builder()
            .identity(&identity)
            .region("us-east-1")
            .name(service)
            .time(std::time::SystemTime::now())
            .settings(SigningSettings::default())
            .build()
            .expect("params")
            .into();
        let signable = SignableRequest::new(method, uri, std::iter::empty(), SignableBody::Bytes(body))
            .expect("signable");
        let (instructions, _) = sign(signable, &params).expect("signed").into_parts();
        let mut request = http::Request::builder().method(method).uri(uri).body(()).expect("request");
        request.headers_mut().insert("host", "127.0.0.1:3001".parse().expect("host"));
        instructions.apply_to_request_http1x(&mut request);
        (request.into_parts().0, body)
    }

    #[test]
    fn a_request_the_aws_signer_signed_is_verified_whatever_its_path_holds() {
        for uri in [
            "http://127.0.0.1:3001/local/@connections/abc-_x",
            "http://127.0.0.1:3001/@connections/TWegAcC4EowCHnA%3D",
            "http://127.0.0.1:3001/local/@connections/a?b=1&a=x%20y",
        ] {
            let (parts, body) = signed("POST", uri, b"hello", SERVICE);
            assert_eq!(
                signatures().verify(&parts, body, OffsetDateTime::now_utc()),
                Ok(Verified::Signed),
                "{uri}"
            );
        }
    }

    #[test]
    fn a_signature_for_another_service_or_body_is_refused() {
        let uri = "http://127.0.0.1:3001/local/@connections/abc";
        let (parts, _) = signed("POST", uri, b"hello", "execute-api");
        let err = signatures().verify(&parts, b"hellO", OffsetDateTime::now_utc()).expect_err("another body");
        assert!(matches!(err, Denied::Mismatch { .. }), "{err:?}");
        let (parts, body) = signed("POST", uri, b"hello", "s3");
        let err = signatures().verify(&parts, body, OffsetDateTime::now_utc()).expect_err("another service");
        assert_eq!(err.error_type(), "InvalidSignatureException");
    }

    #[test]
    fn a_missing_or_malformed_date_is_an_incomplete_signature() {
        let (mut parts, body) = signed("GET", "http://127.0.0.1:3001/@connections/abc", b"", SERVICE);
        parts.headers.insert("x-amz-date", "yesterday".parse().expect("value"));
        let err = signatures().verify(&parts, body, OffsetDateTime::now_utc()).expect_err("a bad date");
        assert_eq!(err.error_type(), "IncompleteSignatureException");
        parts.headers.remove("x-amz-date");
        let err = signatures().verify(&parts, body, OffsetDateTime::now_utc()).expect_err("no date");
        assert_eq!(err.error_type(), "IncompleteSignatureException");
    }

    #[test]
    fn a_signature_over_the_unencoded_path_passes_with_a_warning_and_names_the_expected_uri() {
        // What older curl releases send: the canonical URI is the path exactly as requested.
        let path = "/local/@connections/abc";
        let now = OffsetDateTime::now_utc();
        let amz_date = basic(now);
        let date = &amz_date[..8];
        let canonical = format!(
            "POST\n{path}\n\nhost:127.0.0.1:3001\nx-amz-date:{amz_date}\n\nhost;x-amz-date\n{}",
            sha256_hex(b"hi")
        );
        let scope = format!("{date}/us-east-1/execute-api/aws4_request");
        let key = signatures().signing_key(date);
        let signature = hex::encode(hmac(&key, string_to_sign(&amz_date, &scope, &canonical).as_bytes()));
        let request = http::Request::builder()
            .method("POST")
            .uri(path)
            .header("host", "127.0.0.1:3001")
            .header("x-amz-date", &amz_date)
            .header(
                "authorization",
                format!("{ALGORITHM} Credential=local/{scope}, SignedHeaders=host;x-amz-date, Signature={signature}"),
            )
            .body(())
            .expect("request");
        let (parts, ()) = request.into_parts();
        assert_eq!(
            signatures().verify(&parts, b"hi", now),
            Ok(Verified::UnencodedPath { expected_canonical_uri: "/local/%40connections/abc".into() })
        );
    }

    #[test]
    fn the_canonical_uri_encodes_the_path_as_sent_once_more() {
        assert_eq!(canonical_uri("/local/@connections/abc-_x"), "/local/%40connections/abc-_x");
        assert_eq!(canonical_uri("/local/@connections/abc%3D"), "/local/%40connections/abc%253D");
        assert_eq!(canonical_uri("/a/./b/../c"), "/a/c");
        assert_eq!(canonical_uri("/"), "/");
    }

    #[test]
    fn the_canonical_query_is_sorted_and_encoded() {
        assert_eq!(canonical_query(Some("b=2&a=x%20y&a=1")), "a=1&a=x%20y&b=2");
        assert_eq!(canonical_query(None), "");
    }

    #[test]
    fn a_malformed_authorization_header_says_what_it_lacks() {
        let Err(Denied::Incomplete(why)) = parse_authorization("AWS4-HMAC-SHA256 Credential=a/b/c/d/e")
        else {
            panic!("incomplete");
        };
        assert!(why.contains("'Signature'") && why.contains("'SignedHeaders'"), "{why}");
        assert!(matches!(parse_authorization("Basic abc"), Err(Denied::Incomplete(_))));
        assert!(matches!(
            parse_authorization("AWS4-HMAC-SHA256 Credential=a/b, SignedHeaders=host, Signature=00"),
            Err(Denied::Incomplete(_))
        ));
    }
}
