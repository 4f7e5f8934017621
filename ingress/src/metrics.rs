//! What the ingress did, as operators read it: one CloudWatch Embedded Metric Format line per event
//! (see [`shared::metrics`]), counting events by route and errors by code, and running totals of the
//! same for the local gateway's `/_local/stats`.

use std::collections::BTreeMap;
use std::sync::Mutex;

use aws_lambda_events::apigw::ApiGatewayProxyResponse;
use serde_json::{Value, json};
use shared::metrics::MetricGroup;

use crate::error::IngressError;

/// One event handled: its route, the code of what was refused or failed (a client error such as
/// `invalid_json`, or the `errorType` of a failed invocation), and the answer.
#[derive(Debug)]
pub struct Handled<R = ApiGatewayProxyResponse> {
    /// The route key API Gateway selected: `$connect`, `$disconnect`, `$default` or a custom route;
    /// for the server API, `api/<method>`.
    pub route: String,
    pub code: Option<&'static str>,
    pub result: Result<R, IngressError>,
}

/// The event as one EMF line: `Events` by `Function` and `Route`, and `Errors` by `Function` and
/// `Code` when something was refused or failed. Codes and routes are few, so the metrics stay few.
pub fn emf_line<R>(handled: &Handled<R>, function: &str, timestamp_ms: i64) -> String {
    let route_dimensions = [("Function", function), ("Route", handled.route.as_str())];
    let mut groups =
        vec![MetricGroup { dimensions: &route_dimensions, metrics: vec![("Events", "Count", json!(1))] }];
    let code_dimensions;
    if let Some(code) = handled.code {
        code_dimensions = [("Function", function), ("Code", code)];
        groups
            .push(MetricGroup { dimensions: &code_dimensions, metrics: vec![("Errors", "Count", json!(1))] });
    }
    shared::metrics::emf_line(&groups, timestamp_ms)
}

/// Every event's figures added up, as the local gateway shows them.
#[derive(Debug, Default)]
pub struct Totals {
    inner: Mutex<Counts>,
}

#[derive(Debug, Default)]
struct Counts {
    by_route: BTreeMap<String, u64>,
    by_code: BTreeMap<&'static str, u64>,
}

impl Totals {
    pub fn add<R>(&self, handled: &Handled<R>) {
        let mut inner = self.inner.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        *inner.by_route.entry(handled.route.clone()).or_default() += 1;
        if let Some(code) = handled.code {
            *inner.by_code.entry(code).or_default() += 1;
        }
    }

    /// `{"events_by_route": {"$connect": …, …}, "errors_by_code": {"invalid_json": …, …}}`.
    pub fn to_json(&self) -> Value {
        let inner = self.inner.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        json!({ "events_by_route": inner.by_route, "errors_by_code": inner.by_code })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn handled(route: &str, code: Option<&'static str>) -> Handled {
        Handled { route: route.to_owned(), code, result: Ok(ApiGatewayProxyResponse::default()) }
    }

    #[test]
    fn an_event_counts_by_route_and_a_refusal_by_its_code() {
        let line: Value =
            serde_json::from_str(&emf_line(&handled("$default", Some("invalid_json")), "ws-ingress", 7))
                .expect("json");
        let directives = line["_aws"]["CloudWatchMetrics"].as_array().expect("directives");
        assert_eq!(directives[0]["Dimensions"], json!([["Function", "Route"]]));
        assert_eq!(directives[1]["Dimensions"], json!([["Function", "Code"]]));
        assert_eq!(
            (&line["Route"], &line["Code"], &line["Events"], &line["Errors"]),
            (&json!("$default"), &json!("invalid_json"), &json!(1), &json!(1))
        );

        let line: Value =
            serde_json::from_str(&emf_line(&handled("$connect", None), "ws-ingress", 7)).expect("json");
        assert_eq!(
            line["_aws"]["CloudWatchMetrics"].as_array().expect("directives").len(),
            1,
            "no error, no Errors"
        );
        assert!(line.get("Code").is_none() && line.get("Errors").is_none(), "{line}");
    }

    #[test]
    fn totals_count_every_route_and_code() {
        let totals = Totals::default();
        totals.add(&handled("$connect", None));
        totals.add(&handled("$default", Some("invalid_json")));
        totals.add(&handled("$default", None));
        assert_eq!(
            totals.to_json(),
            json!({"events_by_route": {"$connect": 1, "$default": 2}, "errors_by_code": {"invalid_json": 1}})
        );
    }
}
