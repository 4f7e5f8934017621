//! Route selection, as API Gateway evaluates a `RouteSelectionExpression`.
//!
//! `$request.body.action` reads the message as JSON and takes the value at `action` as the route key;
//! a key with no route, a missing value or a message that is not JSON selects `$default`. A static
//! expression such as `$default` (or `\$default`) sends every message to that route.

use std::collections::HashSet;

pub const DEFAULT_ROUTE: &str = "$default";
pub const CONNECT_ROUTE: &str = "$connect";
pub const DISCONNECT_ROUTE: &str = "$disconnect";

/// A parsed route selection expression and the custom route keys it may select.
#[derive(Clone, Debug)]
pub struct RouteSelector {
    expression: Expression,
    routes: HashSet<String>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
enum Expression {
    /// `$request.body.a.b`: the path of property names.
    Body(Vec<String>),
    /// Anything else: a literal route key.
    Static(String),
}

/// An expression this stand-in cannot evaluate.
#[derive(Debug, thiserror::Error)]
#[error("unsupported route selection expression {0:?}: use $request.body.<property> or a static route key")]
pub struct InvalidExpression(String);

impl RouteSelector {
    pub fn parse(
        expression: &str,
        routes: impl IntoIterator<Item = String>,
    ) -> Result<Self, InvalidExpression> {
        let inner = expression.trim();
        // API Gateway accepts both `$request.body.action` and `${request.body.action}`.
        let inner = inner
            .strip_prefix("${")
            .and_then(|e| e.strip_suffix('}'))
            .map_or(inner.to_owned(), |e| format!("${e}"));
        let expression = match inner.strip_prefix("$request.body.") {
            Some(path) => {
                let path: Vec<String> = path.split('.').map(str::to_owned).collect();
                if path.iter().any(String::is_empty) {
                    return Err(InvalidExpression(expression.to_owned()));
                }
                Expression::Body(path)
            }
            None if inner.starts_with("$request") => return Err(InvalidExpression(expression.to_owned())),
            None => Expression::Static(inner.trim_start_matches('\\').to_owned()),
        };
        let routes = routes.into_iter().filter(|r| !r.starts_with('$')).collect();
        Ok(Self { expression, routes })
    }

    /// The route key for a text message.
    pub fn select(&self, body: &str) -> String {
        match &self.expression {
            Expression::Static(key) => key.clone(),
            // With no custom routes every message goes to `$default`: no need to parse it.
            Expression::Body(_) if self.routes.is_empty() => DEFAULT_ROUTE.to_owned(),
            Expression::Body(path) => {
                let Ok(json) = serde_json::from_str::<serde_json::Value>(body) else {
                    return DEFAULT_ROUTE.to_owned();
                };
                let key =
                    path.iter().try_fold(&json, |value, name| value.get(name)).and_then(
                        |value| match value {
                            serde_json::Value::String(s) => Some(s.clone()),
                            serde_json::Value::Null
                            | serde_json::Value::Object(_)
                            | serde_json::Value::Array(_) => None,
                            other => Some(other.to_string()),
                        },
                    );
                key.filter(|key| self.routes.contains(key)).unwrap_or_else(|| DEFAULT_ROUTE.to_owned())
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn selector(expression: &str, routes: &[&str]) -> RouteSelector {
        RouteSelector::parse(expression, routes.iter().map(|r| (*r).to_owned())).expect("valid expression")
    }

    #[test]
    fn a_known_action_selects_its_route_and_anything_else_goes_to_default() {
        let s = selector("$request.body.action", &["broadcast", "7"]);
        assert_eq!(s.select(r#"{"action":"broadcast"}"#), "broadcast");
        assert_eq!(s.select(r#"{"action":7}"#), "7");
        assert_eq!(s.select(r#"{"action":"Broadcast"}"#), DEFAULT_ROUTE, "matching is exact");
        assert_eq!(s.select(r#"{"action":"echo"}"#), DEFAULT_ROUTE);
        assert_eq!(s.select(r#"{"other":1}"#), DEFAULT_ROUTE);
        assert_eq!(s.select("Hello"), DEFAULT_ROUTE);
        assert_eq!(s.select("{broken"), DEFAULT_ROUTE);
    }

    #[test]
    fn nested_paths_and_the_braced_form_are_understood() {
        let s = selector("${request.body.meta.kind}", &["join"]);
        assert_eq!(s.select(r#"{"meta":{"kind":"join"}}"#), "join");
    }

    #[test]
    fn a_static_expression_sends_everything_to_one_route() {
        let s = selector("\\$default", &["broadcast"]);
        assert_eq!(s.select(r#"{"action":"broadcast"}"#), DEFAULT_ROUTE);
    }

    #[test]
    fn expressions_this_stand_in_cannot_evaluate_are_refused() {
        assert!(RouteSelector::parse("$request.header.x", Vec::new()).is_err());
        assert!(RouteSelector::parse("$request.body.", Vec::new()).is_err());
    }
}
