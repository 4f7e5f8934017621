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
topics, and the alarms on the project's own metrics reading what the worker writes. The server API:
every route behind SigV4 (/iam/api/) or the server-scope token (/api/, with authorization on), none
open, its own throttle, and the ingress closing and telling connections of its own stage alone.

The optional parts (the stack's KMS key, X-Ray, access logging, a custom domain, reserved
concurrency, authorization, alarm topics, lifecycle events to an EventBridge bus, hooks' functions) are checked as CloudFormation would deploy them: every
check runs on the template as written and on it evaluated with every combination of the options'
values (CHOICES; conditions decided, each Fn::If resolved, AWS::NoValue dropped), and the Rules
must refuse the combinations in REFUSED. With --write DIR it also writes the eleven representative
COMBINATIONS as templates whose parameter defaults are that combination, for cfn-lint.
Then it breaks a copy of the template in each of those ways and checks that every break is caught
(on the eleven combinations, which together turn every option on).
"""

import copy
import itertools
import json
import pathlib
import re
import sys
import tomllib

from cfnlint.decode import decode


def resources_of(template, kind):
    return {name: r for name, r in template["Resources"].items() if r.get("Type") == kind}


def as_list(value):
    return value if isinstance(value, list) else [value]


# The calls each function makes through the AWS adapters (beside their ports in shared/src), by port method:
# the ingress puts/deletes connections, subscribes, and numbers, keeps and reads channel history; the
# worker scans, queries, prunes, requeues, and numbers a backend's publish.
NEEDS = {
    "IngressRole": {
        "dynamodb:UpdateItem", "dynamodb:PutItem", "dynamodb:GetItem", "dynamodb:DeleteItem",
        "dynamodb:BatchWriteItem", "dynamodb:Query", "sqs:SendMessage",
        # A connection flooding past its quota, or disconnected by the server API, closed (DELETE
        # @connections); one the server API disconnects or unsubscribes told why (POST).
        "execute-api:ManageConnections",
    },
    "WorkerRole": {
        "dynamodb:Scan", "dynamodb:Query", "dynamodb:BatchGetItem", "dynamodb:BatchWriteItem",
        "dynamodb:UpdateItem", "dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:DeleteItem",
        "sqs:SendMessage", "sqs:ReceiveMessage", "sqs:DeleteMessage", "execute-api:ManageConnections",
    },
}

# Calls the functions make only when a parameter turns them on: granted exactly then, on exactly
# that resource (deployed_violations).
EVENTS_ACTION = "events:PutEvents"
EVENT_BUS_ARN = {"Fn::Sub": "arn:${AWS::Partition}:events:${AWS::Region}:${AWS::AccountId}:event-bus/${EventBusName}"}
HOOKS_ACTION = "lambda:InvokeFunction"
HOOK_ARNS = {"Fn::Split": [",", {"Ref": "HookFunctionArns"}]}
CONDITIONAL = {EVENTS_ACTION: "EventBusName", HOOKS_ACTION: "HookFunctionArns"}

ADAPTERS = {
    "dynamodb": ["shared/src/store/dynamodb.rs", "shared/src/history/dynamodb.rs", "shared/src/presence/dynamodb.rs"],
    "sqs": ["shared/src/queue/sqs.rs"],
    "events": ["shared/src/events/eventbridge.rs"],
    "lambda": ["shared/src/hooks/lambda.rs"],
}

# IAM authorizes SQS's batch calls with the single call's action.
IAM_ACTION = {
    "sqs:SendMessageBatch": "sqs:SendMessage",
    "sqs:DeleteMessageBatch": "sqs:DeleteMessage",
    "lambda:Invoke": HOOKS_ACTION,
}


def sdk_calls():
    """The `dynamodb:` and `sqs:` actions of every SDK call the adapters make."""
    root = pathlib.Path(__file__).resolve().parent.parent
    calls = set()
    for service, paths in ADAPTERS.items():
        # Production code only: the unit tests' mocks name operations too.
        source = "".join((root / path).read_text().split("#[cfg(test)]")[0] for path in paths)
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
    for worker, _, _ in LANES:
        for metric in ("Errors", "Throttles"):
            if not watching("AWS/Lambda", metric, worker):
                found.append(f"no alarm on {worker}'s {metric}")
    params = template.get("Parameters", {})
    topic = res.get("AlarmTopic")
    if "AlarmEmail" in params and (topic is None or topic.get("Condition") != "HasAlarmEmail"):
        found.append("AlarmTopic: must exist exactly when AlarmEmail is set")
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


# Parameter values that turn each optional part on, alone and together. The default deploy is the
# first; "everything" is the largest stack the template makes.
_AUTH = {"JwtSecret": "a-development-secret-of-at-least-32-bytes"}
_ALARMS = {"AlarmEmail": "ops@example.com", "AlarmTopicArn": "arn:aws:sns:us-east-1:123456789012:pager"}
_CERTIFICATE = {"CertificateArn": "arn:aws:acm:us-east-1:123456789012:certificate/0a1b2c3d-4e5f-6789-abcd-ef0123456789"}
# One certificate for both names (a wildcard, or one with both).
_DOMAIN = {"DomainName": "ws.example.com", "ServerApiDomainName": "api.example.com", **_CERTIFICATE}
_SERVER_DOMAIN = {"ServerApiDomainName": "api.example.com", **_CERTIFICATE}
_HOOKS = "arn:aws:lambda:us-east-1:123456789012:function:rooms,arn:aws:lambda:us-east-1:123456789012:function:archive:live"
COMBINATIONS = {
    "defaults": {},
    "auth-and-alarms": {**_AUTH, **_ALARMS},
    "customer-managed-key": {"CustomerManagedKey": "true", **_AUTH, **_ALARMS},
    "tracing": {"Tracing": "Active", **_AUTH},
    "access-logs": {"AccessLogging": "on"},
    "access-logs-and-account-role": {"AccessLogging": "on-and-set-account-role"},
    "custom-domain": _DOMAIN,
    "server-api-domain": _SERVER_DOMAIN,
    "no-reservations": {"IngressReservedConcurrency": "none", "AuthorizerReservedConcurrency": "none", **_AUTH},
    "lifecycle-events": {"EventBusName": "app-events"},
    "everything": {
        "CustomerManagedKey": "true", "Tracing": "Active", "AccessLogging": "on-and-set-account-role",
        "EventBusName": "app-events", "HookFunctionArns": _HOOKS, **_DOMAIN, **_AUTH, **_ALARMS,
    },
}

# Each option's values: every combination of them (1,152) is evaluated too, by every_combination().
CHOICES = {
    "CustomerManagedKey": [{}, {"CustomerManagedKey": "true"}],
    "AccessLogging": [{}, {"AccessLogging": "on"}, {"AccessLogging": "on-and-set-account-role"}],
    "Tracing": [{}, {"Tracing": "Active"}],
    "Domain": [{}, _DOMAIN],
    "IngressReservedConcurrency": [{}, {"IngressReservedConcurrency": "none"}],
    "AuthorizerReservedConcurrency": [{}, {"AuthorizerReservedConcurrency": "none"}],
    "Authorization": [{}, _AUTH, {"JwksUrl": "https://issuer.example.com/.well-known/jwks.json"}],
    "AlarmEmail": [{}, {"AlarmEmail": _ALARMS["AlarmEmail"]}],
    "AlarmTopicArn": [{}, {"AlarmTopicArn": _ALARMS["AlarmTopicArn"]}],
    "EventBusName": [{}, {"EventBusName": "app-events"}],
    "HookFunctionArns": [{}, {"HookFunctionArns": _HOOKS}],
}


def every_combination():
    for picks in itertools.product(*CHOICES.values()):
        params = {k: v for pick in picks for k, v in pick.items()}
        yield ",".join(f"{k}={v}" for k, v in sorted(params.items()) if k != "JwtSecret") or "defaults", params


# Parameter values CloudFormation must refuse before it creates anything (the template's Rules).
REFUSED = {
    "a domain without its certificate": {"DomainName": "ws.example.com"},
    "a certificate without a domain": _CERTIFICATE,
    "a server API domain without its certificate": {"ServerApiDomainName": "api.example.com"},
    "both kinds of token key": {**_AUTH, "JwksUrl": "https://issuer.example.com/.well-known/jwks.json"},
    "lifecycle events without presence": {"EventBusName": "app-events", "Presence": "false"},
}

# Values each parameter's AllowedPattern or AllowedValues must refuse (CloudFormation matches the
# whole value), beside the values CHOICES uses, which it must accept.
MALFORMED = {
    "DomainName": ["WS.example.com", "https://ws.example.com", "ws.example.com/", "ws..example.com", "localhost"],
    "ServerApiDomainName": ["API.example.com", "https://api.example.com", "api.example.com/api", "localhost"],
    "CertificateArn": ["arn:aws:iam::123456789012:server-certificate/ws", "0a1b2c3d-4e5f-6789-abcd-ef0123456789"],
    "IngressReservedConcurrency": ["", "-1", "lots", "50 "],
    "AuthorizerReservedConcurrency": ["", "None", "2.5"],
    "AccessLogging": ["true", "On", ""],
    "Tracing": ["true", "active"],
    "CustomerManagedKey": ["yes", ""],
    "AlarmTopicArn": ["arn:aws:sqs:us-east-1:123456789012:pager"],
    "EventBusName": ["arn:aws:events:us-east-1:123456789012:event-bus/app", "app events", "a" * 257],
    "Presence": ["yes", "True", ""],
    "HookFunctionArns": [
        "rooms", "arn:aws:lambda:us-east-1:123456789012:function:*", "arn:aws:sqs:us-east-1:123456789012:rooms",
        "arn:aws:lambda:us-east-1:123456789012:function:rooms,", ",arn:aws:lambda:us-east-1:123456789012:function:rooms",
        "arn:aws:lambda:us-east-1:123456789012:function:rooms, arn:aws:lambda:us-east-1:123456789012:function:archive",
    ],
}


def accepts(parameter, value):
    if "AllowedValues" in parameter and str(value) not in [str(v) for v in parameter["AllowedValues"]]:
        return False
    return "AllowedPattern" not in parameter or re.fullmatch(parameter["AllowedPattern"], str(value)) is not None


def parameter_violations(template):
    found = []
    params = template.get("Parameters", {})
    for name, values in MALFORMED.items():
        for value in values:
            if name not in params or accepts(params[name], value):
                found.append(f"{name}: accepts the malformed value {value!r}")
    for choices in CHOICES.values():
        for pick in choices:
            for name, value in pick.items():
                if not accepts(params[name], value):
                    found.append(f"{name}: refuses the valid value {value!r}")
    return found


_NO_VALUE = object()


def condition_evaluator(template, params):
    """`holds(expression)` for the template's condition functions with `params` (else the defaults)."""
    values = {name: str(p.get("Default", "")) for name, p in template.get("Parameters", {}).items()}
    values.update(params)
    decided = {}

    def operand(x):
        if isinstance(x, dict) and set(x) == {"Ref"} and x["Ref"] in values:
            return values[x["Ref"]]
        return str(x)

    def holds(expr):
        (fn, args), = expr.items()
        if fn == "Fn::Equals":
            return operand(args[0]) == operand(args[1])
        if fn == "Fn::Not":
            return not holds(args[0])
        if fn == "Fn::And":
            return all(holds(a) for a in args)
        if fn == "Fn::Or":
            return any(holds(a) for a in args)
        if fn == "Condition":
            return condition(args)
        raise ValueError(f"a condition this check cannot evaluate: {expr}")

    def condition(name):
        if name not in decided:
            decided[name] = holds(template["Conditions"][name])
        return decided[name]

    return holds, condition, values


def refused_by_rules(template, params):
    """The AssertDescriptions of the Rules that `params` break."""
    holds, _, _ = condition_evaluator(template, params)
    broken = []
    for rule in template.get("Rules", {}).values():
        if "RuleCondition" in rule and not holds(rule["RuleCondition"]):
            continue
        broken += [a.get("AssertDescription", "?") for a in rule.get("Assertions", []) if not holds(a["Assert"])]
    return broken


def evaluate(template, params):
    """The template as CloudFormation deploys it with `params`: its conditions decided, each Fn::If
    resolved, AWS::NoValue dropped and the resources and outputs whose condition is false removed."""
    _, condition, values = condition_evaluator(template, params)

    def walk(x):
        if isinstance(x, dict):
            if set(x) == {"Fn::If"}:
                name, yes, no = x["Fn::If"]
                return walk(yes if condition(name) else no)
            if set(x) == {"Ref"} and x["Ref"] == "AWS::NoValue":
                return _NO_VALUE
            return {k: w for k, w in ((k, walk(v)) for k, v in x.items()) if w is not _NO_VALUE}
        if isinstance(x, list):
            return [w for w in (walk(v) for v in x) if w is not _NO_VALUE]
        return x

    t = copy.deepcopy(template)
    for section in ("Resources", "Outputs"):
        t[section] = {
            name: item for name, item in t.get(section, {}).items()
            if "Condition" not in item or condition(item["Condition"])
        }
    for section in ("Resources", "Outputs", "Globals"):
        if section in t:
            t[section] = walk(t[section])
    t["Parameters"] = {name: {**p, "Default": values[name]} for name, p in t.get("Parameters", {}).items()}
    return t


def statements_of(role):
    for policy in role["Properties"].get("Policies", []):
        for statement in policy["PolicyDocument"]["Statement"]:
            if isinstance(statement, dict) and "Effect" in statement:
                yield statement


def grants(role, action, resource=None):
    return any(
        s.get("Effect") == "Allow" and action in as_list(s.get("Action", []))
        and (resource is None or resource in as_list(s.get("Resource", [])))
        for s in statements_of(role)
    )


# The only actions a statement may grant on every resource: IAM has no narrower resource for them.
RESOURCELESS = {"xray:PutTraceSegments", "xray:PutTelemetryRecords"}
FUNCTION_ROLES = {"IngressFunction": "IngressRole", "WorkerFunction": "WorkerRole", "BulkWorkerFunction": "WorkerRole", "AuthorizerFunction": "AuthorizerRole"}
# Each lane's worker, the queue its mapping drains, and the parameter that sets both its mapping's
# concurrency and its reservation (fewer reserved would throttle the mapping).
LANES = [
    ("WorkerFunction", "BroadcastQueue", "WorkerMaxConcurrency"),
    ("BulkWorkerFunction", "BulkQueue", "BulkWorkerMaxConcurrency"),
]
ACCESS_LOG_FIELDS = ["$context.requestId", "$context.connectionId", "$context.eventType", "$context.routeKey", "$context.status"]
KEY = {"Ref": "EncryptionKey"}
KEY_ARN = {"Fn::GetAtt": ["EncryptionKey", "Arn"]}


def deployed_violations(t, params):
    """Checks on one evaluated combination: what each optional part must bring when it is on, and
    that the default deploy has none of it."""
    found = []
    res = t["Resources"]
    globals_fn = t.get("Globals", {}).get("Function", {})
    functions = resources_of(t, "AWS::Serverless::Function")
    cmk = params.get("CustomerManagedKey") == "true"

    for name, queue in resources_of(t, "AWS::SQS::Queue").items():
        props = queue.get("Properties", {})
        if props.get("SqsManagedSseEnabled") is not True and "KmsMasterKeyId" not in props:
            found.append(f"{name}: queue must be encrypted")
    for name, topic in resources_of(t, "AWS::SNS::Topic").items():
        if topic["Properties"].get("KmsMasterKeyId") == "alias/aws/sns":
            found.append(f"{name}: encrypted with AWS's SNS key, which CloudWatch alarms cannot use: they would never notify")
    if cmk:
        if "EncryptionKey" not in res:
            found.append("CustomerManagedKey=true makes no key")
        for name, queue in resources_of(t, "AWS::SQS::Queue").items():
            if queue["Properties"].get("KmsMasterKeyId") != KEY:
                found.append(f"{name}: not encrypted with the stack's key")
        for name, group in resources_of(t, "AWS::Logs::LogGroup").items():
            if group["Properties"].get("KmsKeyId") != KEY_ARN:
                found.append(f"{name}: not encrypted with the stack's key")
        for name, table in resources_of(t, "AWS::DynamoDB::Table").items():
            sse = table["Properties"].get("SSESpecification", {})
            if sse.get("SSEType") != "KMS" or sse.get("KMSMasterKeyId") != KEY:
                found.append(f"{name}: not encrypted with the stack's key")
        for name, topic in resources_of(t, "AWS::SNS::Topic").items():
            if topic["Properties"].get("KmsMasterKeyId") != KEY:
                found.append(f"{name}: not encrypted with the stack's key")
        for name, fn in functions.items():
            if {**globals_fn, **fn["Properties"]}.get("KmsKeyArn") != KEY_ARN:
                found.append(f"{name}: its environment is not encrypted with the stack's key")
        for role, actions in {"IngressRole": ["kms:GenerateDataKey", "kms:Decrypt"], "WorkerRole": ["kms:GenerateDataKey", "kms:Decrypt"]}.items():
            for action in actions:
                if role in res and not grants(res[role], action, KEY_ARN):
                    found.append(f"{role}: the queue is encrypted with the stack's key but the role lacks {action} on it")
        policy = json.dumps(res.get("EncryptionKey", {}).get("Properties", {}).get("KeyPolicy", {}))
        for service in ("cloudwatch.amazonaws.com", "logs.${AWS::Region}.amazonaws.com"):
            if service not in policy:
                found.append(f"EncryptionKey: its policy does not let {service} use it")
    elif "EncryptionKey" in res:
        found.append("EncryptionKey: made although CustomerManagedKey is false (a key costs $1 a month)")

    def value(x):
        """A parameter's value for a Ref to it."""
        if isinstance(x, dict) and set(x) == {"Ref"} and x["Ref"] in t["Parameters"]:
            return t["Parameters"][x["Ref"]]["Default"]
        return x

    topics = ([{"Ref": "AlarmTopic"}] if params.get("AlarmEmail") else []) + (
        [{"Ref": "AlarmTopicArn"}] if params.get("AlarmTopicArn") else [])
    for name, alarm in resources_of(t, "AWS::CloudWatch::Alarm").items():
        for key in ("AlarmActions", "OKActions"):
            if alarm["Properties"].get(key, []) != topics:
                found.append(f"{name}: its {key} are not exactly the topics the parameters name")

    tracing = params.get("Tracing") == "Active"
    for name, fn in functions.items():
        role = res.get(FUNCTION_ROLES.get(name, ""), None)
        if value({**globals_fn, **fn["Properties"]}.get("Tracing")) != ("Active" if tracing else "PassThrough"):
            found.append(f"{name}: Tracing does not follow the Tracing parameter")
        if role is not None and tracing != all(grants(role, a) for a in RESOURCELESS):
            found.append(f"{FUNCTION_ROLES[name]}: X-Ray's write actions must be granted exactly when Tracing is Active")

    stage = res.get("Stage", {}).get("Properties", {})
    access = stage.get("AccessLogSettings")
    if params.get("AccessLogging", "off") == "off":
        if access is not None or resources_of(t, "AWS::ApiGateway::Account"):
            found.append("Stage: access logging (or the account's logging role) set up although AccessLogging is off")
    else:
        destination = (access or {}).get("DestinationArn", {})
        group = destination.get("Fn::GetAtt", [None])[0] if isinstance(destination, dict) else None
        if group not in resources_of(t, "AWS::Logs::LogGroup"):
            found.append("Stage: AccessLogging is on but the stage logs to no log group of the stack's")
        for field in ACCESS_LOG_FIELDS:
            if field not in (access or {}).get("Format", ""):
                found.append(f"Stage: the access log format lacks {field}")
        accounts = resources_of(t, "AWS::ApiGateway::Account")
        if (params["AccessLogging"] == "on-and-set-account-role") != bool(accounts):
            found.append("the account's API Gateway logging role must be set exactly with AccessLogging=on-and-set-account-role")

    server_stage = res.get("ServerApiStage", {}).get("Properties", {})
    if (params.get("AccessLogging", "off") == "off") != ("AccessLogSettings" not in server_stage):
        found.append("ServerApiStage: its access logs must follow AccessLogging")
    server_domains = {n: d for n, d in resources_of(t, "AWS::ApiGatewayV2::DomainName").items() if d["Properties"].get("DomainName") == {"Ref": "ServerApiDomainName"}}
    server_mappings = {n: m for n, m in resources_of(t, "AWS::ApiGatewayV2::ApiMapping").items() if m["Properties"].get("ApiId") == {"Ref": "ServerApi"}}
    server_url = json.dumps(t.get("Outputs", {}).get("ServerApiUrl", {}).get("Value"))
    if params.get("ServerApiDomainName"):
        if not server_domains or [m["Properties"].get("Stage") for m in server_mappings.values()] != [{"Ref": "ServerApiStage"}]:
            found.append("ServerApiDomainName is set but the stack maps no domain name to the server API's stage")
        for name, domain in server_domains.items():
            for config in domain["Properties"].get("DomainNameConfigurations", []):
                if config.get("SecurityPolicy") != "TLS_1_2" or config.get("EndpointType") != "REGIONAL":
                    found.append(f"{name}: must be a REGIONAL endpoint with TLS 1.2")
        if "${ServerApiDomainName}" not in server_url:
            found.append("ServerApiUrl: does not follow the server API's custom domain")
    elif server_domains or server_mappings or "${ServerApiDomainName}" in server_url:
        found.append("a server API custom domain although ServerApiDomainName is empty")

    domains = {n: d for n, d in resources_of(t, "AWS::ApiGatewayV2::DomainName").items() if n not in server_domains}
    url = json.dumps(t.get("Outputs", {}).get("ApiUrl", {}).get("Value"))
    if params.get("DomainName"):
        mappings = {n: m for n, m in resources_of(t, "AWS::ApiGatewayV2::ApiMapping").items() if n not in server_mappings}
        if not domains or not mappings:
            found.append("DomainName is set but the stack makes no domain name and API mapping")
        for name, domain in domains.items():
            for config in domain["Properties"].get("DomainNameConfigurations", []):
                if config.get("SecurityPolicy") != "TLS_1_2" or config.get("EndpointType") != "REGIONAL":
                    found.append(f"{name}: must be a REGIONAL endpoint with TLS 1.2")
        for name, mapping in mappings.items():
            if mapping["Properties"].get("Stage") != {"Ref": "Stage"} or mapping["Properties"].get("ApiMappingKey"):
                found.append(f"{name}: must map the domain's root to the stage")
        if "${DomainName}" not in url:
            found.append("ApiUrl: does not follow the custom domain")
    elif domains or "${DomainName}" in url:
        found.append("a custom domain in the default deploy")

    # Lifecycle events and hooks: each granted, to both functions, exactly when its parameter is set,
    # alone in its statement, on exactly what the parameter names.
    for action, parameter, named in ((EVENTS_ACTION, "EventBusName", EVENT_BUS_ARN), (HOOKS_ACTION, "HookFunctionArns", HOOK_ARNS)):
        on = bool(params.get(parameter))
        for role in ("IngressRole", "WorkerRole"):
            if role not in res:
                continue
            granting = [s for s in statements_of(res[role]) if action in as_list(s.get("Action", []))]
            if on and not any(s.get("Resource") == named for s in granting):
                found.append(f"{role}: {parameter} is set but the role may not call {action} on what it names")
            if any(s.get("Resource") != named or as_list(s["Action"]) != [action] for s in granting):
                found.append(f"{role}: {action} granted on more than {parameter} names, or with other actions")
            if not on and granting:
                found.append(f"{role}: may call {action} although {parameter} is empty")
    for name in ("IngressFunction", "WorkerFunction"):
        variables = functions.get(name, {}).get("Properties", {}).get("Environment", {}).get("Variables", {})
        if variables.get("EVENT_BUS_NAME") != {"Ref": "EventBusName"} or variables.get("PRESENCE") != {"Ref": "Presence"}:
            found.append(f"{name}: EVENT_BUS_NAME and PRESENCE must follow their parameters")
        if variables.get("HOOK_FUNCTIONS") != {"Ref": "HookFunctionArns"}:
            found.append(f"{name}: HOOK_FUNCTIONS must follow HookFunctionArns, which the function checks its hooks against")

    reservations = {"IngressFunction": "IngressReservedConcurrency", "AuthorizerFunction": "AuthorizerReservedConcurrency"}
    for name, parameter in reservations.items():
        if name in functions:
            reserved = functions[name]["Properties"].get("ReservedConcurrentExecutions")
            wanted = None if t["Parameters"][parameter]["Default"] == "none" else {"Ref": parameter}
            if reserved != wanted:
                found.append(f"{name}: ReservedConcurrentExecutions does not follow {parameter}")
    return found


def role_violations(template):
    """Least privilege, and enough of it: on the template as written, these see only the statements
    outside an Fn::If; on an evaluated combination, every statement that combination deploys."""
    found = []
    roles = resources_of(template, "AWS::IAM::Role")
    for name, needs in NEEDS.items():
        if name in roles:
            for action in sorted(needs - granted(roles[name])):
                found.append(f"{name}: its function calls {action}, which the role does not grant")
    everything = set().union(*(granted(role) for role in roles.values())) if roles else set()
    for action in sorted(sdk_calls() - everything - set(CONDITIONAL)):
        found.append(f"the adapters call {action}, which no role grants")
    for action, parameter in CONDITIONAL.items():
        if action not in sdk_calls():
            found.append(f"no adapter calls {action} any more: the check of its grant ({parameter}) checks nothing")
    # Both lanes' workers share the role: each receives from its queue, and shard and retry jobs go
    # on either.
    if "WorkerRole" in roles:
        for _, queue, _ in LANES:
            for action in ("sqs:ReceiveMessage", "sqs:DeleteMessage", "sqs:SendMessage"):
                if not grants(roles["WorkerRole"], action, {"Fn::GetAtt": [queue, "Arn"]}):
                    found.append(f"WorkerRole: {action} on {queue} is not granted")
    # The ingress closes (DELETE) and tells (POST) one connection at a time, of its own WebSocket API's
    # stage; it never reads one (GET), and fan-out is the worker's.
    if "IngressRole" in roles:
        methods = set()
        for statement in statements_of(roles["IngressRole"]):
            if "execute-api:ManageConnections" in as_list(statement.get("Action", [])):
                for resource in as_list(statement.get("Resource", [])):
                    text = str(resource.get("Fn::Sub", "") if isinstance(resource, dict) else resource)
                    method = re.fullmatch(r".*:\$\{WebSocketApi\}/\$\{StageName\}/(DELETE|POST)/@connections/\*", text)
                    if method is None:
                        found.append(f"IngressRole: execute-api:ManageConnections on more than POST and DELETE @connections of its stage: {resource}")
                    else:
                        methods.add(method.group(1))
        if "execute-api:ManageConnections" in granted(roles["IngressRole"]) and methods != {"DELETE", "POST"}:
            found.append(f"IngressRole: the server API closes and tells connections, but only {sorted(methods)} @connections is granted")
    for name, role in roles.items():
        # API Gateway's account-wide logging role serves every API: AWS's policy for it is the one.
        if name in FUNCTION_ROLES.values() and role["Properties"].get("ManagedPolicyArns"):
            found.append(f"{name}: managed policies grant more than the function needs")
        if name not in FUNCTION_ROLES.values():
            continue
        for statement in statements_of(role):
            actions = as_list(statement.get("Action", []))
            for action in actions:
                if isinstance(action, str) and "*" in action:
                    found.append(f"{name}: wildcard action {action}")
            for resource in as_list(statement.get("Resource", [])):
                if resource == "*" or (isinstance(resource, str) and resource.endswith(":*")):
                    if not set(actions) <= RESOURCELESS:
                        found.append(f"{name}: wildcard resource {resource}")
    return found


def violations(template):
    found = []
    res = template["Resources"]

    found += role_violations(template)

    authorizers = resources_of(template, "AWS::ApiGatewayV2::Authorizer")
    conditional = ["AuthorizerFunction", "AuthorizerRole", "AuthorizerLogGroup", "AuthorizerInvokePermission",
                   "ServerApiAuthorizerInvokePermission", "ServerApiTokenRoute"]
    for name in list(authorizers) + [n for n in conditional if n in res]:
        if res[name].get("Condition") != "AuthEnabled":
            found.append(f"{name}: must exist only under the AuthEnabled condition, so the default deploy is unchanged")
    for name, authorizer in authorizers.items():
        props = authorizer["Properties"]
        if props.get("ApiId") == {"Ref": "ServerApi"}:
            # A backend sends its token in a header; the function answers the HTTP API's simple shape.
            if props.get("IdentitySource") != ["$request.header.Authorization"]:
                found.append(f"{name}: the server API's identity source must be the Authorization header")
            if props.get("AuthorizerPayloadFormatVersion") != "2.0" or props.get("EnableSimpleResponses") is not True:
                found.append(f"{name}: the server API's authorizer must take payload format 2.0 and answer simple responses")
        elif props.get("IdentitySource") != ["route.request.querystring.token"]:
            found.append(f"{name}: the identity source must be the query string token (browsers cannot set headers)")
    secret = template.get("Parameters", {}).get("JwtSecret")
    if secret is not None and (secret.get("NoEcho") is not True or secret.get("Default", "") != ""):
        found.append("JwtSecret: must be NoEcho with no default")


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
        for worker, _, concurrency in LANES:
            if name == worker and props.get("ReservedConcurrentExecutions") != {"Ref": concurrency}:
                found.append(f"{name}: its reserved concurrency must be {concurrency} (fewer throttles the mapping)")
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

    for name, queue_name, concurrency in LANES:
        worker = functions.get(name)
        queue = res.get(queue_name, {}).get("Properties", {})
        redrive = queue.get("RedrivePolicy", {})
        dlq = redrive.get("deadLetterTargetArn", {})
        if not (isinstance(dlq, dict) and dlq.get("Fn::GetAtt", [None])[0] in queues):
            found.append(f"{queue_name}: needs a RedrivePolicy to a dead-letter queue in the template")
        if worker is None:
            found.append(f"no {name}")
            continue
        timeout = worker["Properties"].get("Timeout", globals_fn.get("Timeout", 3))
        if int(queue.get("VisibilityTimeout", 30)) < 6 * int(timeout):
            found.append(f"{queue_name}: VisibilityTimeout must be at least six times the worker's Timeout")
        events = [e for e in worker["Properties"].get("Events", {}).values() if e.get("Type") == "SQS"]
        if not events or any("ReportBatchItemFailures" not in e["Properties"].get("FunctionResponseTypes", []) for e in events):
            found.append(f"{name}: its SQS event must report batch item failures")
        if [e["Properties"].get("Queue") for e in events] != [{"Fn::GetAtt": [queue_name, "Arn"]}]:
            found.append(f"{name}: must drain {queue_name} and nothing else")
        if any(e["Properties"].get("ScalingConfig", {}).get("MaximumConcurrency") != {"Ref": concurrency} for e in events):
            found.append(f"{name}: its mapping's MaximumConcurrency must be {concurrency}")
        variables = worker["Properties"].get("Environment", {}).get("Variables", {})
        lane = "bulk" if queue_name == "BulkQueue" else "interactive"
        if variables.get("LANE") != lane or variables.get("BULK_QUEUE_URL") != {"Ref": "BulkQueue"}:
            found.append(f"{name}: must be told LANE={lane} and the bulk queue (BULK_QUEUE_URL)")
        if variables.get("QUEUE_URL") != {"Ref": "BroadcastQueue"}:
            found.append(f"{name}: must be told the main queue (QUEUE_URL)")

    routes = resources_of(template, "AWS::ApiGatewayV2::Route")
    found += server_api_violations(template, routes)
    defaults = [n for n, r in routes.items() if r["Properties"].get("RouteKey") == "$default"]
    responses = resources_of(template, "AWS::ApiGatewayV2::RouteResponse")
    if not defaults or not any(
        r["Properties"].get("RouteId", {}).get("Ref") in defaults for r in responses.values()
    ):
        found.append("the $default route needs a route response, or errors never reach the sender")
    return found + alarm_violations(template)


def server_api_violations(template, routes):
    """The server API: every route behind one kind of authorization — SigV4 under /iam/api/, the
    server-scope token under /api/ (only with authorization on) — none open; the ingress behind it
    with payload format 2.0; its own throttle."""
    found = []
    res = template["Resources"]
    served = {n: r for n, r in routes.items() if r["Properties"].get("ApiId") == {"Ref": "ServerApi"}}
    if not any(r["Properties"].get("AuthorizationType") == "AWS_IAM" for r in served.values()):
        found.append("the server API has no SigV4 route")
    for name, route in served.items():
        props = route["Properties"]
        key, kind = props.get("RouteKey", ""), props.get("AuthorizationType", "NONE")
        if key.startswith("POST /iam/api/"):
            if kind != "AWS_IAM":
                found.append(f"{name}: {key} must be authorized with AWS_IAM (SigV4)")
        elif key.startswith("POST /api/"):
            if kind != "CUSTOM" or props.get("AuthorizerId") != {"Ref": "ServerApiAuthorizer"}:
                found.append(f"{name}: {key} must be authorized by the server API's token authorizer")
        else:
            found.append(f"{name}: {key} is neither POST /api/… nor POST /iam/api/…")
        if kind == "NONE":
            found.append(f"{name}: a server API route open to anyone")
    integration = res.get("ServerApiIntegration", {}).get("Properties", {})
    if integration.get("PayloadFormatVersion") != "2.0" or integration.get("IntegrationUri") != {"Fn::GetAtt": ["IngressFunction", "Arn"]}:
        found.append("ServerApiIntegration: must hand the ingress payload format 2.0 events")
    settings = res.get("ServerApiStage", {}).get("Properties", {}).get("DefaultRouteSettings", {})
    if settings.get("ThrottlingRateLimit") != {"Ref": "ServerApiThrottlingRateLimit"} or settings.get("ThrottlingBurstLimit") != {"Ref": "ServerApiThrottlingBurstLimit"}:
        found.append("ServerApiStage: its throttle must follow ServerApiThrottlingRateLimit and ServerApiThrottlingBurstLimit")
    return found


def samconfig_violations(template, config):
    """`sam deploy` with no flags must be able to deploy the template: the capabilities its IAM
    resources need, a bucket for the artifacts, a stack name, and the region left to the user."""
    found = []
    deploy = config.get("default", {}).get("deploy", {}).get("parameters", {})
    stack = config.get("default", {}).get("global", {}).get("parameters", {}).get("stack_name")
    capabilities = set(as_list(deploy.get("capabilities", [])))
    for c in list(capabilities):
        capabilities.update(c.split())
    named = [n for n, r in resources_of(template, "AWS::IAM::Role").items() if "RoleName" in r.get("Properties", {})]
    if named and "CAPABILITY_NAMED_IAM" not in capabilities:
        found.append(f"samconfig.toml: {', '.join(named)} named, so deploying needs CAPABILITY_NAMED_IAM")
    if not capabilities & {"CAPABILITY_IAM", "CAPABILITY_NAMED_IAM"}:
        found.append("samconfig.toml: the stack makes IAM roles, so deploying needs CAPABILITY_IAM")
    if deploy.get("resolve_s3") is not True and "s3_bucket" not in deploy:
        found.append("samconfig.toml: no bucket for the artifacts (resolve_s3 = true)")
    if not stack:
        found.append("samconfig.toml: no stack_name")
    if any("region" in section.get("parameters", {}) for section in config.get("default", {}).values()):
        found.append("samconfig.toml: sets a region, which should be the user's (AWS_DEFAULT_REGION, profile or --guided)")
    return found


SAMCONFIG = pathlib.Path(__file__).resolve().parent.parent / "samconfig.toml"


def all_violations(template, config=None, combinations=None):
    """The checks on the template as written and on each combination as it would be deployed."""
    if config is None:
        config = tomllib.loads(SAMCONFIG.read_text())
    found = violations(template) + samconfig_violations(template, config) + parameter_violations(template)
    for combination, params in REFUSED.items():
        if not refused_by_rules(template, params):
            found.append(f"Rules: {combination} is not refused")
    for combination, params in (combinations or COMBINATIONS.items()):
        found += [f"[{combination}] refused: {r}" for r in refused_by_rules(template, params)]
        deployed = evaluate(template, params)
        found += [f"[{combination}] {v}" for v in role_violations(deployed) + deployed_violations(deployed, params)]
    return sorted(set(found), key=found.index)


def breakages(template):
    """Copies of the template, each broken in one way the checks must catch."""

    def broken(change):
        t = copy.deepcopy(template)
        change(t)
        return t

    def statements(t, role):
        return t["Resources"][role]["Properties"]["Policies"][0]["PolicyDocument"]["Statement"]

    def statement(t, role, action):
        """The statement of `role` that grants `action`, looking inside Fn::If."""
        for s in statements(t, role):
            for candidate in [s, *(s.get("Fn::If", [None, {}, {}])[1:])]:
                if isinstance(candidate, dict) and action in as_list(candidate.get("Action", [])):
                    return candidate
        raise KeyError(f"{role} grants no {action}")

    def resource(t, name):
        return t["Resources"][name]["Properties"]

    return {
        "wildcard resource": broken(lambda t: statement(t, "WorkerRole", "dynamodb:Scan").update(Resource="*")),
        "wildcard action": broken(lambda t: statement(t, "IngressRole", "dynamodb:PutItem").update(Action="dynamodb:*")),
        "missing TTL": broken(lambda t: t["Resources"]["ConnectionsTable"]["Properties"].pop("TimeToLiveSpecification")),
        "missing table SSE": broken(lambda t: t["Resources"]["ConnectionsTable"]["Properties"].pop("SSESpecification")),
        "missing queue SSE": broken(lambda t: t["Resources"]["BroadcastQueue"]["Properties"].pop("SqsManagedSseEnabled")),
        "missing DLQ": broken(lambda t: t["Resources"]["BroadcastQueue"]["Properties"].pop("RedrivePolicy")),
        "short visibility": broken(lambda t: t["Resources"]["BroadcastQueue"]["Properties"].update(VisibilityTimeout=60)),
        "no partial batch": broken(lambda t: t["Resources"]["WorkerFunction"]["Properties"]["Events"]["Broadcasts"]["Properties"].pop("FunctionResponseTypes")),
        "no partial batch on the bulk lane": broken(lambda t: t["Resources"]["BulkWorkerFunction"]["Properties"]["Events"]["Shards"]["Properties"].pop("FunctionResponseTypes")),
        "a bulk worker draining the main queue": broken(lambda t: t["Resources"]["BulkWorkerFunction"]["Properties"]["Events"]["Shards"]["Properties"].update(Queue={"Fn::GetAtt": ["BroadcastQueue", "Arn"]})),
        "a bulk worker told it is interactive": broken(lambda t: t["Resources"]["BulkWorkerFunction"]["Properties"]["Environment"]["Variables"].update(LANE="interactive")),
        "a worker not told the bulk queue": broken(lambda t: t["Resources"]["WorkerFunction"]["Properties"]["Environment"]["Variables"].pop("BULK_QUEUE_URL")),
        "a worker that cannot queue shard jobs": broken(lambda t: statement(t, "WorkerRole", "sqs:SendMessage").update(Resource={"Fn::GetAtt": ["BroadcastQueue", "Arn"]})),
        "a bulk queue without a dead-letter queue": broken(lambda t: resource(t, "BulkQueue").pop("RedrivePolicy")),
        "a bulk lane without a throttle alarm": broken(lambda t: t["Resources"]["BulkWorkerThrottlesAlarm"]["Properties"]["Dimensions"][0].update(Value={"Ref": "WorkerFunction"})),
        "a bulk reservation below its concurrency": broken(lambda t: resource(t, "BulkWorkerFunction").update(ReservedConcurrentExecutions={"Ref": "WorkerMaxConcurrency"})),
        "a bulk mapping past its reservation": broken(lambda t: t["Resources"]["BulkWorkerFunction"]["Properties"]["Events"]["Shards"]["Properties"]["ScalingConfig"].update(MaximumConcurrency={"Ref": "WorkerMaxConcurrency"})),
        "SAM policies": broken(lambda t: t["Resources"]["IngressFunction"]["Properties"].update(Policies=["AWSLambdaBasicExecutionRole"])),
        "al2": broken(lambda t: t["Globals"]["Function"].update(Runtime="provided.al2")),
        "no route response": broken(lambda t: [t["Resources"].pop(n) for n in list(t["Resources"]) if n == "DefaultRouteResponse"]),
        "ingress without UpdateItem": broken(lambda t: statement(t, "IngressRole", "dynamodb:PutItem").update(Action=["dynamodb:PutItem", "dynamodb:DeleteItem"])),
        "worker without Query": broken(lambda t: statement(t, "WorkerRole", "dynamodb:Query").update(Action=["dynamodb:BatchGetItem", "dynamodb:BatchWriteItem"])),
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
        "the alarm topic on AWS's SNS key": broken(lambda t: resource(t, "AlarmTopic").update(KmsMasterKeyId="alias/aws/sns")),
        "a queue left on SQS's key with the stack's key on": broken(lambda t: resource(t, "BroadcastDeadLetterQueue").pop("KmsMasterKeyId")),
        "a log group left on AWS's key with the stack's key on": broken(lambda t: resource(t, "WorkerLogGroup").pop("KmsKeyId")),
        "a worker that cannot decrypt its queue": broken(lambda t: statement(t, "WorkerRole", "kms:Decrypt").update(Action=["kms:Decrypt"])),
        "a key policy without CloudWatch": broken(lambda t: resource(t, "EncryptionKey")["KeyPolicy"]["Statement"].pop()),
        "a key made by default": broken(lambda t: t["Resources"]["EncryptionKey"].pop("Condition")),
        "tracing without X-Ray's permissions": broken(lambda t: [statements(t, "WorkerRole").remove(s) for s in list(statements(t, "WorkerRole")) if "xray:PutTraceSegments" in json.dumps(s)]),
        "X-Ray's permissions on other actions": broken(lambda t: statement(t, "IngressRole", "xray:PutTraceSegments").update(Action=["xray:PutTraceSegments", "xray:PutTelemetryRecords", "sqs:SendMessage"])),
        "an access log without connection ids": broken(lambda t: resource(t, "Stage")["AccessLogSettings"]["Fn::If"][1].update(Format='{"requestId":"$context.requestId"}')),
        "access logging on by default": broken(lambda t: resource(t, "Stage").update(AccessLogSettings=resource(t, "Stage")["AccessLogSettings"]["Fn::If"][1])),
        "the account's logging role set whenever logs are on": broken(lambda t: t["Resources"]["ApiGatewayAccount"].update(Condition="AccessLogs")),
        "a custom domain in the default deploy": broken(lambda t: t["Resources"]["CustomDomain"].pop("Condition")),
        "a domain on TLS 1.0": broken(lambda t: resource(t, "CustomDomain")["DomainNameConfigurations"][0].update(SecurityPolicy="TLS_1_0")),
        "an ApiUrl that ignores the domain": broken(lambda t: t["Outputs"]["ApiUrl"].update(Value={"Fn::Sub": "wss://${WebSocketApi}.execute-api.${AWS::Region}.amazonaws.com/${StageName}"})),
        "a worker reservation below its concurrency": broken(lambda t: resource(t, "WorkerFunction").update(ReservedConcurrentExecutions=2)),
        "a domain name pattern that allows a URL": broken(lambda t: t["Parameters"]["DomainName"].update(AllowedPattern=".*")),
        "a domain allowed without its certificate": broken(lambda t: t["Rules"].pop("DomainNeedsCertificate")),
        "a named role deployed with CAPABILITY_IAM": broken(lambda t: resource(t, "WorkerRole").update(RoleName="websocket-worker")),
        "an ingress reservation that ignores none": broken(lambda t: resource(t, "IngressFunction").update(ReservedConcurrentExecutions={"Ref": "IngressReservedConcurrency"})),
        "events on every bus": broken(lambda t: statement(t, "WorkerRole", EVENTS_ACTION).update(Resource="*")),
        "events granted without a bus": broken(lambda t: statements(t, "IngressRole").append({"Effect": "Allow", "Action": EVENTS_ACTION, "Resource": EVENT_BUS_ARN})),
        "a worker that cannot put its events": broken(lambda t: [statements(t, "WorkerRole").remove(s) for s in list(statements(t, "WorkerRole")) if EVENTS_ACTION in json.dumps(s)]),
        "events allowed without presence": broken(lambda t: t["Rules"].pop("EventsNeedPresence")),
        "a bus name pattern that allows an ARN": broken(lambda t: t["Parameters"]["EventBusName"].update(AllowedPattern=".*")),
        "an ingress that may read connections": broken(lambda t: statement(t, "IngressRole", "execute-api:ManageConnections")["Resource"].append({"Fn::Sub": "arn:${AWS::Partition}:execute-api:${AWS::Region}:${AWS::AccountId}:${WebSocketApi}/${StageName}/GET/@connections/*"})),
        "an ingress that cannot tell a connection why": broken(lambda t: statement(t, "IngressRole", "execute-api:ManageConnections")["Resource"].pop()),
        "an ingress that may manage any API's connections": broken(lambda t: statement(t, "IngressRole", "execute-api:ManageConnections").update(Resource={"Fn::Sub": "arn:${AWS::Partition}:execute-api:${AWS::Region}:${AWS::AccountId}:*/${StageName}/POST/@connections/*"})),
        "a server API route open to anyone": broken(lambda t: resource(t, "ServerApiIamRoute").update(AuthorizationType="NONE")),
        "a token route without its authorizer": broken(lambda t: resource(t, "ServerApiTokenRoute").update(AuthorizationType="AWS_IAM")),
        "a token route without authorization": broken(lambda t: t["Resources"]["ServerApiTokenRoute"].pop("Condition")),
        "a route outside the server API's paths": broken(lambda t: resource(t, "ServerApiIamRoute").update(RouteKey="ANY /{proxy+}")),
        "a server API authorizer always on": broken(lambda t: t["Resources"]["ServerApiAuthorizer"].pop("Condition")),
        "a server token in the query string": broken(lambda t: resource(t, "ServerApiAuthorizer").update(IdentitySource=["$request.querystring.token"])),
        "a server API authorizer answering IAM policies": broken(lambda t: resource(t, "ServerApiAuthorizer").pop("EnableSimpleResponses")),
        "a server API on payload format 1.0": broken(lambda t: resource(t, "ServerApiIntegration").update(PayloadFormatVersion="1.0")),
        "a server API without its throttle": broken(lambda t: resource(t, "ServerApiStage").pop("DefaultRouteSettings")),
        "server API access logs on by default": broken(lambda t: resource(t, "ServerApiStage").update(AccessLogSettings=resource(t, "ServerApiStage")["AccessLogSettings"]["Fn::If"][1])),
        "a server API domain in the default deploy": broken(lambda t: t["Resources"]["ServerApiCustomDomain"].pop("Condition")),
        "a ServerApiUrl that ignores its domain": broken(lambda t: t["Outputs"]["ServerApiUrl"].update(Value={"Fn::Sub": "https://${ServerApi}.execute-api.${AWS::Region}.amazonaws.com"})),
        "a server API domain allowed without its certificate": broken(lambda t: t["Rules"].pop("ServerApiDomainNeedsCertificate")),
        "hooks on every function": broken(lambda t: statement(t, "IngressRole", HOOKS_ACTION).update(Resource="*")),
        "hooks granted without functions named": broken(lambda t: statements(t, "WorkerRole").append({"Effect": "Allow", "Action": HOOKS_ACTION, "Resource": HOOK_ARNS})),
        "a worker that cannot hand its event hooks": broken(lambda t: [statements(t, "WorkerRole").remove(s) for s in list(statements(t, "WorkerRole")) if HOOKS_ACTION in json.dumps(s)]),
        "hooks granted with more": broken(lambda t: statement(t, "IngressRole", HOOKS_ACTION).update(Action=[HOOKS_ACTION, "lambda:InvokeAsync"])),
        "a function that does not know its grant": broken(lambda t: resource(t, "IngressFunction")["Environment"]["Variables"].pop("HOOK_FUNCTIONS")),
        "a hook pattern that allows a name": broken(lambda t: t["Parameters"]["HookFunctionArns"].update(AllowedPattern=".*")),
        "a worker that cannot prune a member": broken(lambda t: statement(t, "WorkerRole", "dynamodb:DeleteItem").update(Action=["dynamodb:Query", "dynamodb:BatchGetItem", "dynamodb:BatchWriteItem", "dynamodb:UpdateItem", "dynamodb:GetItem", "dynamodb:PutItem"])),
    }


def write_combinations(template, directory):
    """Each combination as a template of its own whose parameter defaults are that combination."""
    out = pathlib.Path(directory)
    out.mkdir(parents=True, exist_ok=True)
    for combination, params in COMBINATIONS.items():
        t = copy.deepcopy(template)
        for name, value in params.items():
            t["Parameters"][name]["Default"] = value
        (out / f"{combination}.json").write_text(json.dumps(t, indent=1))


def main(path, write=None):
    template, matches = decode(path)
    if template is None:
        print(f"{path}: could not be parsed: {matches}")
        return 1
    if write:
        write_combinations(template, write)
    failures = all_violations(template, combinations=every_combination())
    for failure in failures:
        print(f"{path}: {failure}")
    uncaught = [name for name, t in breakages(template).items() if not all_violations(t)]
    for name in uncaught:
        print(f"self-test: a template with {name} passed the checks")
    if failures or uncaught:
        return 1
    print(
        f"{path}: least privilege, encryption, TTL, DLQ, batch settings, alarms and the optional parts hold"
        f" in all {sum(1 for _ in every_combination())} combinations of its options"
        f" ({len(breakages(template))} breakages caught, each on {len(COMBINATIONS)} of them)"
    )
    return 0


if __name__ == "__main__":
    args = sys.argv[1:]
    write = None
    if "--write" in args:
        i = args.index("--write")
        write = args[i + 1]
        del args[i:i + 2]
    sys.exit(main(args[0] if args else "template.yaml", write))
