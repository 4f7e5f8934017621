//! The environment each function reads, against what template.yaml sets it: a variable renamed on
//! one side only would ship a function that cannot start (a required one) or that silently ignores
//! its setting (an optional one). The names read are recorded from the functions' own configuration
//! code, so neither side is a copy of the other.

use std::cell::RefCell;
use std::collections::BTreeSet;

use shared::environment::FromEnv;

use yaml_rust2::{Yaml, YamlLoader};

/// Variables Lambda sets itself; a template may not set them.
const SET_BY_LAMBDA: &[&str] = &["AWS_REGION"];

const TEMPLATE: &str = include_str!("../../template.yaml");

/// The names `configure` looks up, less those Lambda sets.
fn read_by(configure: impl FnOnce(&dyn Fn(&str) -> Option<String>)) -> BTreeSet<String> {
    let names = RefCell::new(BTreeSet::new());
    configure(&|name: &str| {
        names.borrow_mut().insert(name.to_owned());
        None
    });
    names.into_inner().into_iter().filter(|name| !SET_BY_LAMBDA.contains(&name.as_str())).collect()
}

fn ingress_reads() -> BTreeSet<String> {
    read_by(|lookup| drop(ingress::Deployment::from_lookup(lookup)))
}

fn worker_reads() -> BTreeSet<String> {
    read_by(|lookup| drop(worker::Deployment::from_lookup(lookup)))
}

fn authorizer_reads() -> BTreeSet<String> {
    read_by(|lookup| drop(authorizer::deployment::Deployment::from_lookup(lookup)))
}

/// The variables `function` gets: the template's `Globals` and its own `Environment`.
fn set_for(template: &str, function: &str) -> BTreeSet<String> {
    let docs = YamlLoader::load_from_str(template).expect("template.yaml parses");
    let doc = &docs[0];
    let variables = |node: &Yaml| -> Vec<String> {
        node["Environment"]["Variables"]
            .as_hash()
            .map(|vars| vars.keys().filter_map(|k| k.as_str().map(str::to_owned)).collect())
            .unwrap_or_default()
    };
    let resource = &doc["Resources"][function];
    assert!(!resource.is_badvalue(), "template.yaml has no {function}");
    let mut set: BTreeSet<String> = variables(&doc["Globals"]["Function"]).into_iter().collect();
    set.extend(variables(&resource["Properties"]));
    set
}

fn assert_same(function: &str, reads: BTreeSet<String>, template: &str) {
    let set = set_for(template, function);
    assert_eq!(
        reads,
        set,
        "{function}: read but not set by template.yaml: {:?}; set but never read: {:?}",
        reads.difference(&set).collect::<Vec<_>>(),
        set.difference(&reads).collect::<Vec<_>>()
    );
}

#[test]
fn each_function_reads_exactly_the_variables_the_template_sets_it() {
    assert_same("IngressFunction", ingress_reads(), TEMPLATE);
    assert_same("WorkerFunction", worker_reads(), TEMPLATE);
    assert_same("BulkWorkerFunction", worker_reads(), TEMPLATE);
    assert_same("AuthorizerFunction", authorizer_reads(), TEMPLATE);
}

#[test]
fn the_template_sets_none_of_the_variables_lambda_reserves() {
    for function in ["IngressFunction", "WorkerFunction", "BulkWorkerFunction", "AuthorizerFunction"] {
        let set = set_for(TEMPLATE, function);
        assert!(set.iter().all(|name| !SET_BY_LAMBDA.contains(&name.as_str())), "{function}: {set:?}");
    }
}

#[test]
#[should_panic(expected = "set but never read: [\"QUEUE\"]")]
fn a_variable_renamed_in_the_template_alone_is_caught() {
    let renamed =
        TEMPLATE.replace("          QUEUE_URL: !Ref BroadcastQueue", "          QUEUE: !Ref BroadcastQueue");
    assert_same("IngressFunction", ingress_reads(), &renamed);
}
