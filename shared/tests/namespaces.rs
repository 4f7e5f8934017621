//! The repository's own namespace file, read as the functions and the local gateway read it: a
//! mistake in it fails here, naming its line, before it reaches a deploy.

use shared::namespaces::{self, ChannelOptions};

#[test]
fn the_repositorys_namespace_file_is_valid() {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../namespaces.toml");
    let text = std::fs::read_to_string(path).expect("namespaces.toml at the repository's root");
    if let Err(err) = namespaces::parse(namespaces::FILE, &text, ChannelOptions::default()) {
        panic!("{err}");
    }
}
