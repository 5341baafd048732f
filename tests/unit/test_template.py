"""template.yaml and the state machine definition, checked offline."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

from pipeline.local.template import load_sam_template, translate_template

ROOT = Path(__file__).resolve().parents[2]
ASL = ROOT / "statemachine" / "pipeline.asl.json"


def test_cfn_lint_is_clean():
    cfn_lint = Path(sys.executable).parent / "cfn-lint"
    result = subprocess.run(
        [str(cfn_lint), str(ROOT / "template.yaml")], capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_every_task_retries_and_catches():
    states = json.loads(ASL.read_text())["States"]
    tasks = {name: s for name, s in states.items() if s["Type"] == "Task"}
    assert set(tasks) == {"Split", "Progress", "AwaitChunks", "Finalize", "ContinueAsNew"}
    for name, state in tasks.items():
        if name not in ("AwaitChunks", "ContinueAsNew"):
            assert state["Retry"][-1]["ErrorEquals"] == ["States.ALL"], name
        assert state["Catch"], name


def test_a_throttled_function_is_retried_for_minutes_before_the_run_is_cut_short():
    """Functions share the account's unreserved concurrency with classify, which may hold it
    all: a throttled Split pass must outlast that, not end the split (and the run) as PARTIAL."""
    states = json.loads(ASL.read_text())["States"]
    for name in ("Split", "Progress", "AwaitChunks", "Finalize"):
        throttled = states[name]["Retry"][0]  # the first retrier that matches is the one used
        assert throttled["ErrorEquals"] == ["Lambda.TooManyRequestsException", "ThrottledError"]
        waits = [
            min(throttled["MaxDelaySeconds"], throttled["IntervalSeconds"] * 2**i)
            for i in range(throttled["MaxAttempts"])
        ]
        assert throttled["BackoffRate"] == 2 and sum(waits) >= 900, name
        assert throttled["JitterStrategy"] == "FULL", name  # many runs retry apart, not at once


def test_a_long_split_goes_on_in_a_new_execution_that_a_retried_start_finds():
    """The new execution is named by the run and its passes, so a retry cannot start a second."""
    definition = json.loads(ASL.read_text())
    states = definition["States"]
    assert definition["StartAt"] == "Start"
    go_on = states["ContinueAsNew"]
    assert go_on["Resource"] == "arn:aws:states:::states:startExecution"
    assert go_on["Parameters"]["StateMachineArn.$"] == "$$.StateMachine.Id"
    assert go_on["Parameters"]["Name.$"] == "States.Format('{}-{}', $.run, $.split.passes)"
    new_input = go_on["Parameters"]["Input"]
    assert (new_input["execution_passes"], new_input["continue"]) == (0, False)
    # An existing name means the new execution started: never retried, caught as success
    exists = "StepFunctions.ExecutionAlreadyExistsException"
    assert go_on["Retry"][0] == {"ErrorEquals": [exists], "MaxAttempts": 0}
    assert go_on["Catch"][0]["ErrorEquals"] == [exists]
    assert go_on["Catch"][0]["Next"] == go_on["Next"] == "Continued"
    assert states["Continued"]["Type"] == "Succeed"
    # The new execution pauses first when the old one's last pass paused
    assert states["Start"]["Choices"][0]["Next"] == "PauseSplit"
    assert states["Start"]["Default"] == "Split"
    # The state machine may start itself (named, since a !Ref to itself would be circular)
    machine = load_sam_template()["Resources"]["PipelineStateMachine"]["Properties"]
    names = [
        p["StepFunctionsExecutionPolicy"]["StateMachineName"]
        for p in machine["Policies"]
        if "StepFunctionsExecutionPolicy" in p
    ]
    assert names == [machine["Name"]]


def test_the_wait_for_chunks_is_one_callback_task_with_stall_detection():
    """A Retry on States.ALL would swallow the heartbeat timeout that detects a stall."""
    states = json.loads(ASL.read_text())["States"]
    # The one Wait is Split's pause while the WorkQueue is full, never a poll of the chunks
    assert [name for name, s in states.items() if s["Type"] == "Wait"] == ["PauseSplit"]
    wait = states["AwaitChunks"]
    assert wait["Resource"].endswith(".waitForTaskToken")
    assert wait["HeartbeatSecondsPath"] == "$.heartbeat_s"
    for retry in wait["Retry"]:
        assert not {"States.ALL", "States.Timeout", "States.HeartbeatTimeout"} & set(
            retry["ErrorEquals"]
        )
    timeout = wait["Catch"][0]
    assert "States.HeartbeatTimeout" in timeout["ErrorEquals"]
    assert timeout["Next"] == "Progress"


def test_definition_substitutions_match_the_placeholders():
    placeholders = set(re.findall(r"\$\{(\w+)\}", ASL.read_text()))
    machine = load_sam_template()["Resources"]["PipelineStateMachine"]["Properties"]
    assert machine["DefinitionUri"] == "statemachine/pipeline.asl.json"
    assert set(machine["DefinitionSubstitutions"]) == placeholders


def test_every_sqs_event_source_reports_item_failures_with_enough_visibility():
    template = translate_template()
    resources = template["Resources"]
    mappings = [r for r in resources.values() if r["Type"] == "AWS::Lambda::EventSourceMapping"]
    assert len(mappings) == 2
    params = {k: v.get("Default") for k, v in template["Parameters"].items()}
    for mapping in mappings:
        props = mapping["Properties"]
        assert props["FunctionResponseTypes"] == ["ReportBatchItemFailures"]
        queue = resources[props["EventSourceArn"]["Fn::GetAtt"][0]]["Properties"]
        target = resources[props["FunctionName"]["Ref"]]
        if target["Type"] == "AWS::Lambda::Alias":  # AutoPublishAlias: the mapping calls `live`
            target = resources[target["Properties"]["FunctionName"]["Ref"]]
        function = target["Properties"]
        visibility, timeout = queue["VisibilityTimeout"], function["Timeout"]
        visibility = params[visibility["Ref"]] if isinstance(visibility, dict) else visibility
        timeout = params[timeout["Ref"]] if isinstance(timeout, dict) else timeout
        assert int(visibility) >= 6 * int(timeout)
        max_receive = queue["RedrivePolicy"]["maxReceiveCount"]
        max_receive = params[max_receive["Ref"]] if isinstance(max_receive, dict) else max_receive
        assert int(max_receive) >= 5


def test_every_function_and_the_state_machine_are_traced():
    resources = translate_template()["Resources"]
    for resource in resources.values():
        if resource["Type"] == "AWS::Lambda::Function":
            assert resource["Properties"]["TracingConfig"] == {"Mode": "Active"}
        if resource["Type"] == "AWS::StepFunctions::StateMachine":
            assert resource["Properties"]["TracingConfiguration"] == {"Enabled": True}


def test_the_stall_timeout_outlasts_a_crashing_chunk_s_retries_and_every_function_checks_it():
    template = translate_template()
    params = {
        k: int(v.get("Default", 0))
        for k, v in template["Parameters"].items()
        if v.get("Type") == "Number"
    }
    assert params["StallTimeoutSeconds"] > (
        params["WorkVisibilityTimeoutSeconds"] * params["WorkMaxReceiveCount"]
    )
    # CloudFormation rules cannot compare numbers: every function gets the three values and
    # Settings refuses a bad combination at cold start (tests/unit/test_config.py)
    env = load_sam_template()["Globals"]["Function"]["Environment"]["Variables"]
    assert env["LAMBDAFLOW_STALL_TIMEOUT_S"] == {"Ref": "StallTimeoutSeconds"}
    assert env["LAMBDAFLOW_WORK_VISIBILITY_TIMEOUT_S"] == {"Ref": "WorkVisibilityTimeoutSeconds"}
    assert env["LAMBDAFLOW_WORK_MAX_RECEIVE_COUNT"] == {"Ref": "WorkMaxReceiveCount"}


def test_staging_is_outside_the_query_prefixes_and_expires():
    bucket = load_sam_template()["Resources"]["ResultsBucket"]["Properties"]
    rules = {r["Id"]: r for r in bucket["LifecycleConfiguration"]["Rules"]}
    assert rules["ExpireAbandonedStaging"]["Prefix"] == "staging/"
    assert rules["ExpireAbandonedStaging"]["ExpirationInDays"] > 0


def test_split_pauses_only_when_its_pass_says_so_and_then_splits_again():
    states = json.loads(ASL.read_text())["States"]
    pause = states["PauseSplit"]
    assert (pause["SecondsPath"], pause["Next"]) == ("$.pause_s", "Split")
    choices = states["IsSplitDone"]["Choices"]
    assert [(c["Variable"], c["Next"]) for c in choices] == [
        ("$.done", "Progress"),
        ("$.continue", "ContinueAsNew"),
        ("$.paused", "PauseSplit"),
    ]
    assert states["IsSplitDone"]["Default"] == "Split"
