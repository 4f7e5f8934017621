//! The `local` command line: with no subcommand it serves ([`serve`]); `token` mints a development
//! token ([`token`]); `publish` publishes as a backend does ([`publish`]); `index-connections` is an
//! upgrade's step ([`index`]); [`namespaces`] is where the gateway finds its namespace file, [`backend`]
//! where it keeps connections and queues, [`signals`] what stops it.

mod backend;
pub mod index;
mod namespaces;
pub mod publish;
pub mod serve;
mod signals;
pub mod token;

use clap::Parser;

/// A local stand-in for API Gateway WebSocket and the SQS event source mapping, running the project's
/// own ingress and worker handlers.
#[derive(Debug, Parser)]
#[command(version, args_conflicts_with_subcommands = true)]
pub struct Args {
    #[command(subcommand)]
    command: Option<Command>,
    #[command(flatten)]
    serve: serve::ServeArgs,
}

#[derive(Debug, clap::Subcommand)]
enum Command {
    /// Mint a development token (HS256) for a gateway started with --jwt-secret; prints it.
    Token(token::TokenArgs),
    /// Publish to a channel as a backend does: one call to the server API, the local gateway's or a
    /// deployed stack's (its ServerApiUrl output); prints the message's id, offset and epoch.
    Publish(publish::PublishArgs),
    /// Upgrading from a version before the Connections index: give the connections it does not hold
    /// their place in it, so that broadcasts reach them before they reconnect.
    IndexConnections(index::IndexArgs),
}

/// Does what the command line asks.
pub async fn run(args: Args) -> anyhow::Result<()> {
    match &args.command {
        Some(Command::Token(token_args)) => println!("{}", token::mint(token_args)?),
        Some(Command::Publish(publish_args)) => {
            let published = publish::run(publish_args).await?;
            println!("{published}");
        }
        Some(Command::IndexConnections(index_args)) => {
            let indexed = index::run(index_args).await?;
            println!("indexed {indexed} connections");
        }
        None => serve::run(&args.serve).await?,
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;
    use std::net::IpAddr;
    use token::TokenArgs;

    #[test]
    fn the_gateway_binds_loopback_unless_told_otherwise() {
        Args::command().debug_assert();
        // A developer's LOCAL_HOST would change the default; the variable is read, never set.
        if std::env::var_os("LOCAL_HOST").is_none() {
            assert_eq!(Args::parse_from(["local"]).serve.host, IpAddr::from([127, 0, 0, 1]));
        }
        assert!(Args::parse_from(["local", "--host", "0.0.0.0"]).serve.host.is_unspecified());
    }

    #[test]
    fn its_help_says_what_it_is() {
        assert!(
            Args::command()
                .render_help()
                .to_string()
                .starts_with("A local stand-in for API Gateway WebSocket")
        );
    }

    #[test]
    fn issuer_and_audience_need_an_authorizer_and_a_token_needs_a_long_secret() {
        assert!(Args::try_parse_from(["local", "--jwt-issuer", "x"]).is_err());
        assert!(Args::try_parse_from(["local", "--jwt-secret", "s", "--jwks", "f"]).is_err());
        let args = TokenArgs {
            sub: "alice".into(),
            subscribe: vec!["chat/*".into()],
            publish: vec![],
            ttl_secs: 60,
            secret: "short".into(),
            issuer: None,
            audience: None,
            info: None,
            server: false,
        };
        assert!(token::mint(&args).is_err());
        let long = TokenArgs { secret: "x".repeat(32), ..args };
        assert_eq!(token::mint(&long).expect("a token").matches('.').count(), 2);
        let named = TokenArgs { info: Some(r#"{"name":"Alice"}"#.into()), ..long.clone() };
        assert!(token::mint(&named).is_ok());
        for bad in ["[1]", "not json", &format!(r#"{{"n":"{}"}}"#, "x".repeat(1100))] {
            assert!(token::mint(&TokenArgs { info: Some(bad.to_owned()), ..long.clone() }).is_err(), "{bad}");
        }
        assert!(token::mint(&TokenArgs { subscribe: vec!["a/*/b".into()], ..long }).is_err());
    }

    #[test]
    fn an_events_url_is_an_http_url_and_needs_presence() {
        assert!(Args::try_parse_from(["local", "--events-url", "http://127.0.0.1:9400/events"]).is_ok());
        assert!(Args::try_parse_from(["local", "--events-url", "https://hooks.example.com/ws"]).is_ok());
        for bad in ["ftp://127.0.0.1/", "127.0.0.1:9400", "not a url"] {
            assert!(Args::try_parse_from(["local", "--events-url", bad]).is_err(), "{bad}");
        }
        assert!(
            Args::try_parse_from(["local", "--no-presence", "--events-url", "http://127.0.0.1/"]).is_err()
        );
    }

    #[test]
    fn fault_rates_must_be_fractions() {
        assert!(Args::try_parse_from(["local", "--fault-post-throttle", "0.1"]).is_ok());
        for bad in ["1.5", "-0.1", "ten"] {
            assert!(Args::try_parse_from(["local", "--fault-post-error", bad]).is_err(), "{bad}");
        }
    }
}
