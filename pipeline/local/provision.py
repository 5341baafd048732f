"""Create every resource of a translated template in the emulator, in dependency order.

Resources are created directly through the service APIs rather than through moto's
CloudFormation, because that one silently drops bucket notifications, queue policies, state
machine DefinitionSubstitutions and tracing (moto 5.2.5). Walking the template ourselves keeps it
the single source of truth: a resource added to template.yaml appears locally, and a resource
type this module cannot create is reported in `ProvisionedStack.skipped` instead of vanishing.

Lambda functions and event source mappings are not given to moto (it cannot run Python without
Docker): they become `LocalFunction`s and `EventSourceMapping`s that `pipeline.local.stack` runs.

Past the ~300-line guide: one walk over the template's resource types, each a short creator; a
split would only scatter that table.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from graphlib import TopologicalSorter
from typing import Any

import boto3

from pipeline.local.emulator import LOCAL_REGION
from pipeline.local.functions import EventSourceMapping, LocalFunction
from pipeline.local.intrinsics import PhysicalResource, Resolver, find_dependencies

logger = logging.getLogger(__name__)

ACCOUNT_ID = "123456789012"
"""moto's default account."""
_QUALIFIED_ARN_COLONS = 7
"""arn:aws:lambda:region:account:function:name:qualifier"""


@dataclass(slots=True)
class ProvisionedStack:
    """What was created: physical resources, outputs, and the Lambda parts to run locally."""

    name: str
    resources: dict[str, PhysicalResource] = field(default_factory=dict)
    outputs: dict[str, str] = field(default_factory=dict)
    functions: dict[str, LocalFunction] = field(default_factory=dict)
    mappings: list[EventSourceMapping] = field(default_factory=list)
    skipped: dict[str, str] = field(default_factory=dict)
    """Logical id → resource type the local stack does not emulate (IAM policies aside)."""


def _attr_str(value: Any) -> str:
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, dict | list):
        return json.dumps(value)
    return str(value)


class Provisioner:
    """Walks a translated template and creates its resources through `clients`."""

    def __init__(self, stack_name: str, endpoint_url: str, parameters: Mapping[str, Any]) -> None:
        self.stack_name = stack_name
        session = boto3.Session(region_name=LOCAL_REGION)
        self._client = lambda service: session.client(service, endpoint_url=endpoint_url)
        pseudo = {
            "AWS::Region": LOCAL_REGION,
            "AWS::AccountId": ACCOUNT_ID,
            "AWS::StackName": stack_name,
            "AWS::Partition": "aws",
            "AWS::URLSuffix": "amazonaws.com",
            "AWS::StackId": self._arn("cloudformation", f"stack/{stack_name}"),
        }
        self._parameters = {**pseudo, **parameters}
        self._creators: dict[str, Callable[[str, dict[str, Any]], PhysicalResource]] = {
            "AWS::S3::Bucket": self._bucket,
            "AWS::SQS::Queue": self._queue,
            "AWS::SQS::QueuePolicy": self._queue_policy,
            "AWS::DynamoDB::Table": self._table,
            "AWS::IAM::Role": self._role,
            "AWS::Lambda::Function": self._function,
            "AWS::Lambda::EventSourceMapping": self._mapping,
            "AWS::StepFunctions::StateMachine": self._state_machine,
            "AWS::CloudWatch::Alarm": self._alarm,
            "AWS::Logs::LogGroup": self._log_group,
            "AWS::S3::BucketPolicy": self._bucket_policy,
            "AWS::Lambda::Version": self._version,
            "AWS::Lambda::Alias": self._alias,
        }
        self._notifications: list[tuple[str, dict[str, Any]]] = []

    def provision(self, template: Mapping[str, Any]) -> ProvisionedStack:
        """Create every resource whose Condition holds; return what was created."""
        params = {
            name: spec.get("Default", "") for name, spec in template.get("Parameters", {}).items()
        }
        resolver = Resolver(
            parameters={**params, **self._parameters}, conditions=template.get("Conditions", {})
        )
        self._stack = ProvisionedStack(name=self.stack_name, resources=resolver.resources)
        resources = template["Resources"]
        for logical_id in _creation_order(resources):
            spec = resources[logical_id]
            if "Condition" in spec and not resolver.condition(spec["Condition"]):
                continue
            creator = self._creators.get(spec["Type"])
            if creator is None:
                self._stack.skipped[logical_id] = spec["Type"]
                continue
            props = resolver.resolve(spec.get("Properties", {}))
            resolver.resources[logical_id] = creator(logical_id, props)
        for bucket, config in self._notifications:
            self._client("s3").put_bucket_notification_configuration(
                Bucket=bucket, NotificationConfiguration=config
            )
        for name, output in template.get("Outputs", {}).items():
            if "Condition" not in output or resolver.condition(output["Condition"]):
                self._stack.outputs[name] = str(resolver.resolve(output["Value"]))
        if self._stack.skipped:
            logger.info("not emulated locally: %s", self._stack.skipped)
        return self._stack

    def _name(self, logical_id: str, explicit: str | None = None) -> str:
        return explicit or f"{self.stack_name}-{logical_id}"

    def _arn(self, service: str, resource: str, *, regional: bool = True) -> str:
        region, account = (LOCAL_REGION, ACCOUNT_ID) if regional else ("", "")
        return f"arn:aws:{service}:{region}:{account}:{resource}"

    def _bucket(self, logical_id: str, props: dict[str, Any]) -> PhysicalResource:
        name = self._name(logical_id, props.get("BucketName")).lower()
        s3 = self._client("s3")
        s3.create_bucket(Bucket=name)
        if props.get("VersioningConfiguration"):
            s3.put_bucket_versioning(
                Bucket=name, VersioningConfiguration=props["VersioningConfiguration"]
            )
        if props.get("BucketEncryption"):
            rules = [
                {"ApplyServerSideEncryptionByDefault": rule["ServerSideEncryptionByDefault"]}
                for rule in props["BucketEncryption"]["ServerSideEncryptionConfiguration"]
            ]
            s3.put_bucket_encryption(
                Bucket=name, ServerSideEncryptionConfiguration={"Rules": rules}
            )
        if props.get("PublicAccessBlockConfiguration"):
            s3.put_public_access_block(
                Bucket=name, PublicAccessBlockConfiguration=props["PublicAccessBlockConfiguration"]
            )
        if props.get("NotificationConfiguration"):
            self._notifications.append((name, _notification(props["NotificationConfiguration"])))
        attrs = {"Arn": f"arn:aws:s3:::{name}", "DomainName": f"{name}.s3.amazonaws.com"}
        return PhysicalResource(ref=name, attributes=attrs)

    def _queue(self, logical_id: str, props: dict[str, Any]) -> PhysicalResource:
        name = self._name(logical_id, props.pop("QueueName", None))
        if props.get("FifoQueue") and not name.endswith(".fifo"):
            name += ".fifo"
        props.pop("Tags", None)
        attributes = {key: _attr_str(value) for key, value in props.items()}
        url = self._client("sqs").create_queue(QueueName=name, Attributes=attributes)["QueueUrl"]
        arn = self._arn("sqs", name)
        return PhysicalResource(
            ref=url, attributes={"Arn": arn, "QueueName": name, "QueueUrl": url}
        )

    def _queue_policy(self, logical_id: str, props: dict[str, Any]) -> PhysicalResource:
        policy = json.dumps(props["PolicyDocument"])
        for url in props["Queues"]:
            self._client("sqs").set_queue_attributes(QueueUrl=url, Attributes={"Policy": policy})
        return PhysicalResource(ref=self._name(logical_id))

    def _table(self, logical_id: str, props: dict[str, Any]) -> PhysicalResource:
        name = self._name(logical_id, props.get("TableName"))
        allowed = (
            "AttributeDefinitions",
            "KeySchema",
            "BillingMode",
            "GlobalSecondaryIndexes",
            "LocalSecondaryIndexes",
            "ProvisionedThroughput",
            "StreamSpecification",
        )
        ddb = self._client("dynamodb")
        table = ddb.create_table(TableName=name, **{k: props[k] for k in allowed if k in props})
        ttl = props.get("TimeToLiveSpecification")
        if ttl:
            ddb.update_time_to_live(TableName=name, TimeToLiveSpecification=ttl)
        arn = table["TableDescription"]["TableArn"]
        stream_arn = table["TableDescription"].get("LatestStreamArn", "")
        return PhysicalResource(ref=name, attributes={"Arn": arn, "StreamArn": stream_arn})

    def _role(self, logical_id: str, props: dict[str, Any]) -> PhysicalResource:
        name = self._name(logical_id, props.get("RoleName"))[:64]
        iam = self._client("iam")
        role = iam.create_role(
            RoleName=name, AssumeRolePolicyDocument=json.dumps(props["AssumeRolePolicyDocument"])
        )
        for policy in props.get("Policies", []):
            iam.put_role_policy(
                RoleName=name,
                PolicyName=policy["PolicyName"],
                # CloudFormation defaults the version; IAM's API insists on it.
                PolicyDocument=json.dumps({"Version": "2012-10-17", **policy["PolicyDocument"]}),
            )
        arn = role["Role"]["Arn"]
        return PhysicalResource(ref=name, attributes={"Arn": arn, "RoleId": role["Role"]["RoleId"]})

    def _function(self, logical_id: str, props: dict[str, Any]) -> PhysicalResource:
        name = self._name(logical_id, props.get("FunctionName"))
        arn = self._arn("lambda", f"function:{name}")
        env = props.get("Environment", {}).get("Variables", {})
        self._stack.functions[logical_id] = LocalFunction(
            logical_id=logical_id,
            name=name,
            arn=arn,
            handler=props["Handler"],
            env={key: _attr_str(value) for key, value in env.items()},
            timeout_s=int(props.get("Timeout", 3)),
            memory_mb=int(props.get("MemorySize", 128)),
        )
        return PhysicalResource(ref=name, attributes={"Arn": arn})

    def _bucket_policy(self, logical_id: str, props: dict[str, Any]) -> PhysicalResource:
        """Apply the policy minus its TLS-only statements.

        The emulator speaks plain HTTP on 127.0.0.1 and moto enforces bucket policies, so an
        `aws:SecureTransport` deny would refuse every request.
        """
        statements = [
            st
            for st in props["PolicyDocument"]["Statement"]
            if "aws:SecureTransport" not in json.dumps(st)
        ]
        if statements:
            policy = json.dumps({**props["PolicyDocument"], "Statement": statements})
            self._client("s3").put_bucket_policy(Bucket=props["Bucket"], Policy=policy)
        return PhysicalResource(ref=self._name(logical_id))

    def _local_function(self, name_or_arn: str) -> LocalFunction:
        """A function of this stack by name, ARN, or alias/version ARN (`…:function:f:live`)."""
        if name_or_arn.count(":") == _QUALIFIED_ARN_COLONS:
            name_or_arn = name_or_arn.rsplit(":", 1)[0]
        return next(f for f in self._stack.functions.values() if name_or_arn in (f.name, f.arn))

    def _version(self, logical_id: str, props: dict[str, Any]) -> PhysicalResource:
        """AutoPublishAlias's version: locally the code is the checkout, so always version 1."""
        function = self._local_function(props["FunctionName"])
        return PhysicalResource(ref=f"{function.arn}:1", attributes={"Version": "1"})

    def _alias(self, logical_id: str, props: dict[str, Any]) -> PhysicalResource:
        """An alias is its qualified ARN; the local dispatch strips the qualifier to invoke."""
        function = self._local_function(props["FunctionName"])
        arn = f"{function.arn}:{props['Name']}"
        return PhysicalResource(ref=arn, attributes={"AliasArn": arn})

    def _mapping(self, logical_id: str, props: dict[str, Any]) -> PhysicalResource:
        function = self._local_function(props["FunctionName"])
        queue_arn = props["EventSourceArn"]
        queue_url = next(
            r.ref for r in self._stack.resources.values() if r.attributes.get("Arn") == queue_arn
        )
        scaling = props.get("ScalingConfig", {})
        self._stack.mappings.append(
            EventSourceMapping(
                logical_id=logical_id,
                queue_url=queue_url,
                queue_arn=queue_arn,
                function=function,
                batch_size=int(props.get("BatchSize", 10)),
                batching_window_s=float(props.get("MaximumBatchingWindowInSeconds", 0)),
                reports_item_failures="ReportBatchItemFailures"
                in props.get("FunctionResponseTypes", []),
                max_concurrency=int(scaling["MaximumConcurrency"]) if scaling else None,
            )
        )
        return PhysicalResource(ref=f"{self.stack_name}-{logical_id}")

    def _state_machine(self, logical_id: str, props: dict[str, Any]) -> PhysicalResource:
        name = self._name(logical_id, props.get("StateMachineName"))
        definition = props.get("DefinitionString") or json.dumps(props["Definition"])
        for key, value in props.get("DefinitionSubstitutions", {}).items():
            definition = definition.replace("${" + key + "}", str(value))
        extra = {}
        if props.get("TracingConfiguration"):
            extra["tracingConfiguration"] = {
                "enabled": bool(props["TracingConfiguration"].get("Enabled"))
            }
        arn = self._client("stepfunctions").create_state_machine(
            name=name,
            definition=definition,
            roleArn=props["RoleArn"],
            type=props.get("StateMachineType", "STANDARD"),
            **extra,
        )["stateMachineArn"]
        return PhysicalResource(ref=arn, attributes={"Arn": arn, "Name": name})

    def _alarm(self, logical_id: str, props: dict[str, Any]) -> PhysicalResource:
        name = props.pop("AlarmName", None) or self._name(logical_id)
        self._client("cloudwatch").put_metric_alarm(AlarmName=name, **props)
        return PhysicalResource(
            ref=name, attributes={"Arn": self._arn("cloudwatch", f"alarm:{name}")}
        )

    def _log_group(self, logical_id: str, props: dict[str, Any]) -> PhysicalResource:
        name = props.get("LogGroupName") or f"/{self.stack_name}/{logical_id}"
        self._client("logs").create_log_group(logGroupName=name)
        return PhysicalResource(
            ref=name, attributes={"Arn": self._arn("logs", f"log-group:{name}")}
        )


def _creation_order(resources: Mapping[str, Any]) -> list[str]:
    """Logical ids such that every Ref/GetAtt/Sub/DependsOn target comes first."""
    graph: dict[str, set[str]] = {}
    for logical_id, spec in resources.items():
        depends_on = spec.get("DependsOn", [])
        explicit = {depends_on} if isinstance(depends_on, str) else set(depends_on)
        graph[logical_id] = (find_dependencies(spec.get("Properties", {})) | explicit) & set(
            resources
        )
    return list(TopologicalSorter(graph).static_order())


def _notification(config: Mapping[str, Any]) -> dict[str, Any]:
    """CloudFormation's NotificationConfiguration → the PutBucketNotificationConfiguration shape."""
    queues = []
    for entry in config.get("QueueConfigurations", []):
        api_entry: dict[str, Any] = {"QueueArn": entry["Queue"], "Events": [entry["Event"]]}
        rules = entry.get("Filter", {}).get("S3Key", {}).get("Rules", [])
        if rules:
            api_entry["Filter"] = {"Key": {"FilterRules": rules}}
        queues.append(api_entry)
    return {"QueueConfigurations": queues}
