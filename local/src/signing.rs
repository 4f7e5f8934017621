//! Signing a request with SigV4 for `execute-api`, with the AWS SDK's own signer: what a backend
//! sends the server API (`local publish`, `bench_server_api`). The gateway's side, which checks
//! signatures, is [`crate::sigv4`].

/// Signs `request` (its body already set) for `execute-api` in `region` with `credentials`, now.
pub fn sign(
    request: &mut reqwest::Request,
    credentials: aws_credential_types::Credentials,
    region: &str,
) -> anyhow::Result<()> {
    sign_for(request, crate::sigv4::SERVICE, credentials, region, std::time::SystemTime::now())
}

/// The same for `service` at `at`: what the tests sign SQS calls and calls from another time with.
pub fn sign_for(
    request: &mut reqwest::Request,
    service: &str,
    credentials: aws_credential_types::Credentials,
    region: &str,
    at: std::time::SystemTime,
) -> anyhow::Result<()> {
    use aws_sigv4::http_request::{SignableBody, SignableRequest, SigningSettings, sign};
    use aws_sigv4::sign::v4;
    let identity = credentials.into();
    let params = v4::SigningParams::builder()
        .identity(&identity)
        .region(region)
        .name(service)
        .time(at)
        .settings(SigningSettings::default())
        .build()?
        .into();
    let body = request.body().and_then(reqwest::Body::as_bytes).unwrap_or_default().to_vec();
    let headers: Vec<(String, String)> = request
        .headers()
        .iter()
        .filter_map(|(name, value)| Some((name.as_str().to_owned(), value.to_str().ok()?.to_owned())))
        .collect();
    let signable = SignableRequest::new(
        request.method().as_str(),
        request.url().as_str(),
        headers.iter().map(|(name, value)| (name.as_str(), value.as_str())),
        SignableBody::Bytes(&body),
    )?;
    let (instructions, _) = sign(signable, &params)?.into_parts();
    for (name, value) in instructions.headers() {
        request
            .headers_mut()
            .insert(reqwest::header::HeaderName::from_bytes(name.as_bytes())?, value.parse()?);
    }
    Ok(())
}
