//! An environment made up by a test, for the functions' configuration readers.

use std::collections::HashMap;

/// A lookup of these variables, as `from_lookup` takes one; any other is unset.
pub fn vars(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> + use<> {
    let vars: HashMap<String, String> =
        pairs.iter().map(|(name, value)| ((*name).to_owned(), (*value).to_owned())).collect();
    move |name| vars.get(name).cloned()
}
