//! `local token`: a development token (HS256) for a gateway started with `--jwt-secret`, with the
//! channels its user may subscribe and publish to.

use anyhow::{Context, bail};

#[derive(Clone, Debug, clap::Args)]
pub struct TokenArgs {
    /// The user: the token's `sub`. Their connections are subscribed to `user/<sub>`.
    #[arg(long)]
    pub(crate) sub: String,
    /// A channel pattern the user may subscribe to (repeatable); none given: every channel.
    #[arg(long)]
    pub(crate) subscribe: Vec<String>,
    /// A channel the user may publish to, or a pattern ending in /* (repeatable); none given: every
    /// channel.
    #[arg(long)]
    pub(crate) publish: Vec<String>,
    /// What the user shows the members of its channels: a JSON object of at most 1 KB, such as
    /// '{"name":"Alice"}' (the token's `info` claim).
    #[arg(long)]
    pub(crate) info: Option<String>,
    /// A server token: it carries the server API's scope (`realtime/server`), for `Authorization:
    /// Bearer` on the server API. A client's token never does.
    #[arg(long)]
    pub(crate) server: bool,
    /// Seconds until the token expires.
    #[arg(long, default_value_t = 3600)]
    pub(crate) ttl_secs: u64,
    /// The gateway's --jwt-secret.
    #[arg(long, env = "JWT_SECRET", hide_env_values = true)]
    pub(crate) secret: String,
    #[arg(long)]
    pub(crate) issuer: Option<String>,
    #[arg(long)]
    pub(crate) audience: Option<String>,
}

/// The token, signed with the gateway's secret.
pub fn mint(args: &TokenArgs) -> anyhow::Result<String> {
    if args.secret.len() < authorizer::verify::MIN_SECRET_BYTES {
        bail!("{}", authorizer::verify::KeyError::SecretTooShort);
    }
    let most = authorizer::verify::MAX_GRANT_PATTERNS;
    if args.subscribe.len() > most || args.publish.len() > most {
        bail!(
            "a token lists at most {most} --subscribe and {most} --publish patterns: the authorizer denies more"
        );
    }
    for pattern in args.subscribe.iter().chain(&args.publish) {
        shared::ChannelPattern::parse(pattern).with_context(|| format!("{pattern:?}"))?;
    }
    let info = match &args.info {
        Some(raw) => {
            let info = shared::identity::Info::parse(raw).with_context(|| format!("--info {raw}"))?;
            Some(serde_json::from_str(info.as_str())?)
        }
        None => None,
    };
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH)?.as_secs();
    let listed = |patterns: &Vec<String>| (!patterns.is_empty()).then(|| patterns.clone());
    let claims = authorizer::token::DevClaims {
        sub: args.sub.clone(),
        subscribe: listed(&args.subscribe),
        publish: listed(&args.publish),
        info,
        scope: args.server.then(|| shared::identity::SERVER_SCOPE.to_owned()),
        exp: now + args.ttl_secs,
        iss: args.issuer.clone(),
        aud: args.audience.clone(),
    };
    Ok(authorizer::token::mint(args.secret.as_bytes(), &claims)?)
}
