#!/usr/bin/env python3
"""Checks the invariants template.yaml must keep, and proves the checks can fail.

    template_policy.py template.yaml

Least privilege (no wildcard action or resource, no SAM-generated role with AWS managed policies),
and enough privilege: each role grants the calls its function makes (NEEDS), and every DynamoDB and
SQS call in the AWS adapters is granted to some function. Encryption at rest on the table and the
queues, TTL on the table, a dead-letter queue behind the broadcast queue, a visibility timeout of at
least six times the worker's timeout, partial batch responses, the `$default` route response, arm64
on provided.al2023. The `$connect` authorizer only under the AuthEnabled condition, with the query
string token as identity source and a secret parameter that is never echoed and has no default.
Alarms on the dead-letter queue, the worker's errors and throttles, each notifying the optional
topics, and the alarms on the project's own metrics reading what the worker writes.
Then it breaks a copy of the template in each of those ways and checks that every break is caught.
"""

import copy
import pathlib
import re
import sys

from cfnlint.decode import decode


def resources_of(template, kind):
    return {name: r for name, r in template["Resources"].items() if r.get("Type") == kind}


def as_list(value):
    return value if isinstance(value, list) else [value]


# The calls each function makes through the AWS adapters (shared/src/aws), by port method:
# the ingress puts/deletes connections and subscribes; the worker scans, queries, prunes and requeues.
NEEDS = {
    "IngressRole": {
        "dynamodb:UpdateItem", "dynamodb:PutItem", "dynamodb:GetItem", "dynamodb:DeleteItem",
        "dynamodb:BatchWriteItem", "sqs:SendMessage",
    },
    "WorkerRole": {
        "dynamodb:Scan", "dynamodb:Query", "dynamodb:BatchGetItem", "dynamodb:BatchWriteItem",
        "sqs:SendMessage", "sqs:ReceiveMessage", "sqs:DeleteMessage", "execute-api:ManageConnections",
    },
}

ADAPTERS = {"dynamodb": "shared/src/aws/dynamodb.rs", "sqs": "shared/src/aws/sqs.rs"}

# IAM authorizes SQS's batch calls with the single call's action.
IAM_ACTION = {"sqs:SendMessageBatch": "sqs:SendMessage", "sqs:DeleteMessageBatch": "sqs:DeleteMessage"}


def sdk_calls():
    """The `dynamodb:` and `sqs:` actions of every SDK call the adapters make."""
    root = pathlib.Path(__file__).resolve().parent.parent
    calls = set()
    for service, path in ADAPTERS.items():
        source = (root / path).read_text()
        # Production code only: the unit tests' mocks name operations too.
        source = source.split("#[cfg(test)]")[0]
        for op in re.findall(r"\.client\s*\.(\w+)\(\)", source):
            action = f"{service}:" + "".join(part.capitalize() for part in op.split("_"))
            calls.add(IAM_ACTION.get(action, action))
    return calls


def granted(role):
    actions = set()
    for policy in role["Properties"].get("Policies", []):
        for statement in policy["PolicyDocument"]["Statement"]:
            if statement.get("Effect") == "Allow":
                actions.update(a for a in as_list(statement.get("Action", [])) if isinstance(a, str))
    return actions


METRICS_SOURCE = "shared/src/metrics.rs, worker/src/metrics.rs, ingress/src/metrics.rs"


def emitted_metrics():
    """The namespace and the metric names of the functions' EMF lines."""
    root = pathlib.Path(__file__).resolve().parent.parent
    namespace = re.search(r'pub const NAMESPACE: &str = "(\w+)"', (root / "shared/src/metrics.rs").read_text()).group(1)
    names = set()
    for path in ("worker/src/metrics.rs", "ingress/src/metrics.rs"):
        source = (root / path).read_text().split("#[cfg(test)]")[0]
        names |= set(re.findall(r'\("(\w+)", "(?:Count|Microseconds)"', source))
    return namespace, names


def refers_to(value, name):
    return value in ({"Ref": name}, {"Fn::GetAtt": [name, "QueueName"]}, {"Fn::GetAtt": [name, "Arn"]})


def alarm_violations(template):
    found = []
    res = template["Resources"]
    alarms = resources_of(template, "AWS::CloudWatch::Alarm")

    def dimension(alarm):
        dims = alarm["Properties"].get("Dimensions", [])
        return dims[0]["Value"] if len(dims) == 1 else None

    def watching(namespace, metric, target):
        return [
            n for n, a in alarms.items()
            if a["Properties"].get("Namespace") == namespace and a["Properties"].get("MetricName") == metric
            and refers_to(dimension(a), target)
        ]

    dlq = res.get("BroadcastQueue", {}).get("Properties", {}).get("RedrivePolicy", {}).get("deadLetterTargetArn", {})
    dlq_name = dlq.get("Fn::GetAtt", [None])[0] if isinstance(dlq, dict) else None
    if not dlq_name or not watching("AWS/SQS", "ApproximateNumberOfMessagesVisible", dlq_name):
        found.append("no alarm on messages waiting in the broadcast queue's dead-letter queue")
    for metric in ("Errors", "Throttles"):
        if not watching("AWS/Lambda", metric, "WorkerFunction"):
            found.append(f"no alarm on the worker's {metric}")
    params = template.get("Parameters", {})
    topic = res.get("AlarmTopic")
    if "AlarmEmail" in params and (topic is None or topic.get("Condition") != "HasAlarmEmail"):
        found.append("AlarmTopic: must exist exactly when AlarmEmail is set")
    if topic is not None and "KmsMasterKeyId" not in topic.get("Properties", {}):
        found.append("AlarmTopic: must be encrypted")
    wanted = []
    if topic is not None:
        wanted.append({"Fn::If": ["HasAlarmEmail", {"Ref": "AlarmTopic"}, {"Ref": "AWS::NoValue"}]})
    if "AlarmTopicArn" in params:
        wanted.append({"Fn::If": ["HasAlarmTopicArn", {"Ref": "AlarmTopicArn"}, {"Ref": "AWS::NoValue"}]})
    namespace, names = emitted_metrics()
    for name, alarm in alarms.items():
        props = alarm["Properties"]
        for key in ("AlarmActions", "OKActions"):
            if any(w not in props.get(key, []) for w in wanted):
                found.append(f"{name}: its {key} must notify every topic the parameters name")
        if not props.get("AlarmDescription"):
            found.append(f"{name}: needs a description saying what it means")
        if props.get("Namespace", "").startswith("AWS/"):
            continue
        if props.get("Namespace") != namespace:
            found.append(f"{name}: namespace {props.get('Namespace')} is not the worker's {namespace} ({METRICS_SOURCE})")
        elif props.get("MetricName") not in names:
            found.append(f"{name}: the worker writes no metric {props.get('MetricName')} ({METRICS_SOURCE})")
    return found


def violations(template):
    found = []
    res = template["Resources"]

    roles = resources_of(template, "AWS::IAM::Role")
    for name, needs in NEEDS.items():
        if name in roles:
            for action in sorted(needs - granted(roles[name])):
                found.append(f"{name}: its function calls {action}, which the role does not grant")
    everything = set().union(*(granted(role) for role in roles.values())) if roles else set()
    for action in sorted(sdk_calls() - everything):
        found.append(f"the adapters call {action}, which no role grants")

    authorizers = resources_of(template, "AWS::ApiGatewayV2::Authorizer")
    conditional = ["AuthorizerFunction", "AuthorizerRole", "AuthorizerLogGroup", "AuthorizerInvokePermission"]
    for name in list(authorizers) + [n for n in conditional if n in res]:
        if res[name].get("Condition") != "AuthEnabled":
            found.append(f"{name}: must exist only under the AuthEnabled condition, so the default deploy is unchanged")
    for name, authorizer in authorizers.items():
        if authorizer["Properties"].get("IdentitySource") != ["route.request.querystring.token"]:
            found.append(f"{name}: the identity source must be the query string token (browsers cannot set headers)")
    secret = template.get("Parameters", {}).get("JwtSecret")
    if secret is not None and (secret.get("NoEcho") is not True or secret.get("Default", "") != ""):
        found.append("JwtSecret: must be NoEcho with no default")

    for name, role in resources_of(template, "AWS::IAM::Role").items():
        if role["Properties"].get("ManagedPolicyArns"):
            found.append(f"{name}: managed policies grant more than the function needs")
        for policy in role["Properties"].get("Policies", []):
            for statement in policy["PolicyDocument"]["Statement"]:
                for action in as_list(statement.get("Action", [])):
                    if isinstance(action, str) and "*" in action:
                        found.append(f"{name}: wildcard action {action}")
                for resource in as_list(statement.get("Resource", [])):
                    if resource == "*" or (isinstance(resource, str) and resource.endswith(":*")):
                        found.append(f"{name}: wildcard resource {resource}")

    functions = resources_of(template, "AWS::Serverless::Function")
    globals_fn = template.get("Globals", {}).get("Function", {})
    for name, fn in functions.items():
        props = {**globals_fn, **fn["Properties"]}
        if "Role" not in props or props.get("Policies"):
            found.append(f"{name}: needs its own least-privilege Role (SAM's generated one adds AWS managed policies)")
        if props.get("Runtime") != "provided.al2023":
            found.append(f"{name}: runtime must be provided.al2023 (the bootstrap needs glibc 2.29)")
        if props.get("Architectures") != ["arm64"]:
            found.append(f"{name}: must run on arm64")
        if fn.get("Metadata", {}).get("BuildMethod") != "rust-cargolambda":
            found.append(f"{name}: must be built by rust-cargolambda")
        if "LogGroup" not in props.get("LoggingConfig", {}):
            found.append(f"{name}: needs its own log group with a retention")

    for name, group in resources_of(template, "AWS::Logs::LogGroup").items():
        if "RetentionInDays" not in group.get("Properties", {}):
            found.append(f"{name}: log group without retention")

    tables = resources_of(template, "AWS::DynamoDB::Table")
    if not tables:
        found.append("no DynamoDB table")
    for name, table in tables.items():
        props = table["Properties"]
        ttl = props.get("TimeToLiveSpecification", {})
        if ttl.get("AttributeName") != "Ttl" or ttl.get("Enabled") is not True:
            found.append(f"{name}: TTL must be enabled on Ttl")
        if props.get("SSESpecification", {}).get("SSEEnabled") is not True:
            found.append(f"{name}: server-side encryption must be enabled")
        if props.get("BillingMode") != "PAY_PER_REQUEST":
            found.append(f"{name}: must be on-demand (PAY_PER_REQUEST)")

    queues = resources_of(template, "AWS::SQS::Queue")
    for name, queue in queues.items():
        props = queue.get("Properties", {})
        if props.get("SqsManagedSseEnabled") is not True and "KmsMasterKeyId" not in props:
            found.append(f"{name}: queue must be encrypted")

    worker = functions.get("WorkerFunction")
    broadcast = res.get("BroadcastQueue", {}).get("Properties", {})
    redrive = broadcast.get("RedrivePolicy", {})
    dlq = redrive.get("deadLetterTargetArn", {})
    if not (isinstance(dlq, dict) and dlq.get("Fn::GetAtt", [None])[0] in queues):
        found.append("BroadcastQueue: needs a RedrivePolicy to a dead-letter queue in the template")
    if worker is None:
        found.append("no WorkerFunction")
    else:
        timeout = worker["Properties"].get("Timeout", globals_fn.get("Timeout", 3))
        if int(broadcast.get("VisibilityTimeout", 30)) < 6 * int(timeout):
            found.append("BroadcastQueue: VisibilityTimeout must be at least six times the worker's Timeout")
        events = [e for e in worker["Properties"].get("Events", {}).values() if e.get("Type") == "SQS"]
        if not events or any("ReportBatchItemFailures" not in e["Properties"].get("FunctionResponseTypes", []) for e in events):
            found.append("WorkerFunction: its SQS event must report batch item failures")

    routes = resources_of(template, "AWS::ApiGatewayV2::Route")
    defaults = [n for n, r in routes.items() if r["Properties"].get("RouteKey") == "$default"]
    responses = resources_of(template, "AWS::ApiGatewayV2::RouteResponse")
    if not defaults or not any(
        r["Properties"].get("RouteId", {}).get("Ref") in defaults for r in responses.values()
    ):
        found.append("the $default route needs a route response, or errors never reach the sender")
    return found + alarm_violations(template)


def breakages(template):
    """Copies of the template, each broken in one way the checks must catch."""

    def broken(change):
        t = copy.deepcopy(template)
        change(t)
        return t

    def statements(t, role):
        return t["Resources"][role]["Properties"]["Policies"][0]["PolicyDocument"]["Statement"]

    return {
        "wildcard resource": broken(lambda t: statements(t, "WorkerRole")[1].update(Resource="*")),
        "wildcard action": broken(lambda t: statements(t, "IngressRole")[1].update(Action="dynamodb:*")),
        "missing TTL": broken(lambda t: t["Resources"]["ConnectionsTable"]["Properties"].pop("TimeToLiveSpecification")),
        "missing table SSE": broken(lambda t: t["Resources"]["ConnectionsTable"]["Properties"].pop("SSESpecification")),
        "missing queue SSE": broken(lambda t: t["Resources"]["BroadcastQueue"]["Properties"].pop("SqsManagedSseEnabled")),
        "missing DLQ": broken(lambda t: t["Resources"]["BroadcastQueue"]["Properties"].pop("RedrivePolicy")),
        "short visibility": broken(lambda t: t["Resources"]["BroadcastQueue"]["Properties"].update(VisibilityTimeout=60)),
        "no partial batch": broken(lambda t: t["Resources"]["WorkerFunction"]["Properties"]["Events"]["Broadcasts"]["Properties"].pop("FunctionResponseTypes")),
        "SAM policies": broken(lambda t: t["Resources"]["IngressFunction"]["Properties"].update(Policies=["AWSLambdaBasicExecutionRole"])),
        "al2": broken(lambda t: t["Globals"]["Function"].update(Runtime="provided.al2")),
        "no route response": broken(lambda t: [t["Resources"].pop(n) for n in list(t["Resources"]) if n == "DefaultRouteResponse"]),
        "ingress without UpdateItem": broken(lambda t: statements(t, "IngressRole")[1].update(Action=["dynamodb:PutItem", "dynamodb:DeleteItem"])),
        "worker without Query": broken(lambda t: statements(t, "WorkerRole")[1].update(Action=["dynamodb:Scan", "dynamodb:BatchWriteItem"])),
        "authorizer always on": broken(lambda t: t["Resources"]["ConnectAuthorizer"].pop("Condition")),
        "token in a header": broken(lambda t: t["Resources"]["ConnectAuthorizer"]["Properties"].update(IdentitySource=["route.request.header.Authorization"])),
        "secret echoed": broken(lambda t: t["Parameters"]["JwtSecret"].pop("NoEcho")),
        "secret default": broken(lambda t: t["Parameters"]["JwtSecret"].update(Default="changeme")),
        "no dead-letter alarm": broken(lambda t: t["Resources"].pop("DeadLetterAlarm")),
        "an alarm on the wrong queue": broken(lambda t: t["Resources"]["DeadLetterAlarm"]["Properties"]["Dimensions"][0].update(Value={"Fn::GetAtt": ["BroadcastQueue", "QueueName"]})),
        "no throttle alarm": broken(lambda t: t["Resources"]["WorkerThrottlesAlarm"]["Properties"]["Dimensions"][0].update(Value={"Ref": "IngressFunction"})),
        "an alarm that notifies no one": broken(lambda t: t["Resources"]["WorkerErrorsAlarm"]["Properties"].pop("AlarmActions")),
        "an alarm on a metric nobody writes": broken(lambda t: t["Resources"]["AbandonedDeliveriesAlarm"]["Properties"].update(MetricName="Dropped")),
        "an alarm in another namespace": broken(lambda t: t["Resources"]["AbandonedDeliveriesAlarm"]["Properties"].update(Namespace="WebSocket")),
    }


def main(path):
    template, matches = decode(path)
    if template is None:
        print(f"{path}: could not be parsed: {matches}")
        return 1
    failures = violations(template)
    for failure in failures:
        print(f"{path}: {failure}")
    uncaught = [name for name, t in breakages(template).items() if not violations(t)]
    for name in uncaught:
        print(f"self-test: a template with {name} passed the checks")
    if failures or uncaught:
        return 1
    print(f"{path}: least privilege, encryption, TTL, DLQ, batch settings and alarms hold ({len(breakages(template))} breakages caught)")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1] if len(sys.argv) > 1 else "template.yaml"))
