//! The namespace file as the gateway finds it — `--namespaces FILE`, or `namespaces.toml` where it
//! starts — the endpoint its hooks are invoked at, and what the banner says of them.

use std::path::{Path, PathBuf};

use anyhow::Context;
use local::Settings;
use local::settings::NamespaceFile;
use shared::namespaces;

/// `--namespaces`, or `namespaces.toml` where the gateway starts when there is one.
pub fn namespace_file(given: Option<&Path>) -> anyhow::Result<Option<NamespaceFile>> {
    let path = match given {
        Some(path) => path.to_owned(),
        None if Path::new(namespaces::FILE).is_file() => PathBuf::from(namespaces::FILE),
        None => return Ok(None),
    };
    let text = std::fs::read_to_string(&path)
        .with_context(|| format!("--namespaces: could not read {}", path.display()))?;
    Ok(Some(NamespaceFile { name: path.display().to_string(), text }))
}

/// The namespaces in force, for the banner: which are listed, and from which file.
pub fn describe_namespaces(settings: &Settings) -> anyhow::Result<String> {
    let namespaces = settings.namespaces()?;
    let names: Vec<&str> = namespaces.listed().map(|(name, _)| name).collect();
    Ok(match &settings.namespaces {
        None => format!("none ({} not found): every channel has the flags' options", namespaces::FILE),
        Some(file) if names.is_empty() => format!("none listed in {}", file.name),
        Some(file) => {
            format!("{} (from {}); any other channel has the flags' options", names.join(", "), file.name)
        }
    })
}

/// A `--hooks-endpoint`: the http(s) URL of a Lambda Invoke API.
pub fn hooks_endpoint(raw: &str) -> Result<String, String> {
    let url = reqwest::Url::parse(raw).map_err(|err| format!("not a URL: {err}"))?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(format!("the Invoke API is served over http or https, not {}", url.scheme()));
    }
    Ok(raw.trim_end_matches('/').to_owned())
}
