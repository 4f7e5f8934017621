//! CloudWatch Embedded Metric Format: metrics written as one JSON log line, which Lambda's log agent
//! turns into CloudWatch metrics with no API call and no latency added to the invocation.
//!
//! Each function builds its line from [`MetricGroup`]s: a set of metrics and the dimensions they are
//! counted by. The template's alarms read [`NAMESPACE`].

use serde_json::{Map, Value, json};

/// The CloudWatch namespace of every metric this project writes.
pub const NAMESPACE: &str = "ServerlessWebSocket";

/// EMF allows at most 100 values in one metric's array, and 100 metrics in one directive.
pub const MAX_VALUES: usize = 100;

/// Metrics counted by the same dimensions, each a name, a CloudWatch unit and a value (a number or
/// an array of at most [`MAX_VALUES`]).
#[derive(Debug)]
pub struct MetricGroup<'a> {
    pub dimensions: &'a [(&'a str, &'a str)],
    pub metrics: Vec<(&'a str, &'a str, Value)>,
}

/// One EMF line of `groups`, stamped `timestamp_ms`. Every dimension and metric is a member of the
/// line, as EMF requires; a dimension two groups share takes the first group's value.
pub fn emf_line(groups: &[MetricGroup<'_>], timestamp_ms: i64) -> String {
    let mut line = Map::new();
    let mut directives = Vec::with_capacity(groups.len());
    for group in groups {
        for (name, value) in group.dimensions {
            line.entry((*name).to_owned()).or_insert_with(|| json!(value));
        }
        for (name, _, value) in &group.metrics {
            line.insert((*name).to_owned(), value.clone());
        }
        let names: Vec<&str> = group.dimensions.iter().map(|(name, _)| *name).collect();
        let metrics: Vec<Value> =
            group.metrics.iter().map(|(name, unit, _)| json!({ "Name": name, "Unit": unit })).collect();
        directives.push(json!({ "Namespace": NAMESPACE, "Dimensions": [names], "Metrics": metrics }));
    }
    line.insert("_aws".to_owned(), json!({ "Timestamp": timestamp_ms, "CloudWatchMetrics": directives }));
    Value::Object(line).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_group_is_a_directive_whose_dimensions_and_metrics_are_members_of_the_line() {
        let groups = [
            MetricGroup {
                dimensions: &[("Function", "f"), ("Route", "$default")],
                metrics: vec![("Messages", "Count", json!(1))],
            },
            MetricGroup {
                dimensions: &[("Function", "f"), ("Code", "invalid_json")],
                metrics: vec![("Errors", "Count", json!(1))],
            },
        ];
        let line: Value = serde_json::from_str(&emf_line(&groups, 42)).expect("json");
        assert_eq!(line["_aws"]["Timestamp"], 42);
        let directives = line["_aws"]["CloudWatchMetrics"].as_array().expect("directives");
        assert_eq!(directives.len(), 2);
        assert_eq!(directives[0]["Dimensions"], json!([["Function", "Route"]]));
        assert_eq!(directives[1]["Dimensions"], json!([["Function", "Code"]]));
        assert_eq!(directives[1]["Metrics"], json!([{"Name": "Errors", "Unit": "Count"}]));
        assert!(directives.iter().all(|d| d["Namespace"] == NAMESPACE));
        assert_eq!(
            (&line["Function"], &line["Route"], &line["Code"], &line["Messages"], &line["Errors"]),
            (&json!("f"), &json!("$default"), &json!("invalid_json"), &json!(1), &json!(1))
        );
    }
}
