"""The one place that talks to the Dagster webserver.

Submitting runs and reading their status go through `dagster_graphql.DagsterGraphQLClient`; what the
client cannot do (list runs with times and step stats, read materialization metadata and check
results) goes through GraphQL queries over the same endpoint (graphql_queries.py). Nothing here
reads Dagster's storage directly, so the app works against a webserver on another host.
No Streamlit import: the pages cache these calls, the tests call them directly.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import requests

from dagster_project.freshness import WATCHED_ASSETS
from streamlit_app.graphql_queries import (
    ADD_PARTITION_MUTATION,
    AUTOMATION_QUERY,
    CHECK_EXECUTIONS_QUERY,
    CHECKS_QUERY,
    DELETE_PARTITIONS_MUTATION,
    FRESHNESS_QUERY,
    INSTANCE_QUERY,
    MATERIALIZATIONS_QUERY,
    PARTITION_KEYS_QUERY,
    RUN_EVENTS_QUERY,
    RUN_QUERY,
    RUNS_QUERY,
    START_SCHEDULE_MUTATION,
    START_SENSOR_MUTATION,
    STOP_SCHEDULE_MUTATION,
    STOP_SENSOR_MUTATION,
)

JOBS = {
    "complete_pipeline_job": "Complete pipeline (ingest, validate, prepare, features, train)",
    "ingestion_job": "Ingestion only (read the exports, run the data checks)",
}
BLOCKING_CHECKS = ("quality_gate",)  # a failed one stops the run; its description says why and what to do
ACTIVE_STATUSES = ("QUEUED", "NOT_STARTED", "STARTING", "STARTED", "CANCELING")
FINISHED_STATUSES = ("SUCCESS", "FAILURE", "CANCELED")


class DagsterError(RuntimeError):
    """Anything that kept an answer from Dagster; pages show one banner for all of them."""


class DagsterUnavailable(DagsterError):
    """The webserver cannot be reached; the message says where we looked and how to start it."""


class DagsterRequestError(DagsterError):
    """The webserver answered, but not with what was asked (unknown job, bad config, ...)."""


@dataclass(frozen=True)
class Step:
    key: str
    status: str
    start_time: float | None = None
    end_time: float | None = None

    @property
    def duration(self) -> float | None:
        return self.end_time - self.start_time if self.start_time and self.end_time else None


@dataclass(frozen=True)
class Run:
    """One run as the app shows it: times are epoch seconds, tags as a dict."""

    run_id: str
    job_name: str
    status: str
    created: float | None = None
    start_time: float | None = None
    end_time: float | None = None
    tags: dict[str, str] = field(default_factory=dict)
    steps: tuple[Step, ...] = ()

    @property
    def launched_by(self) -> str:
        return launched_by(self.tags)

    @property
    def duration(self) -> float | None:
        return self.end_time - self.start_time if self.start_time and self.end_time else None

    @classmethod
    def from_graphql(cls, raw: dict) -> Run:
        steps = tuple(
            Step(s["stepKey"], s["status"] or "NOT_STARTED", s.get("startTime"), s.get("endTime"))
            for s in raw.get("stepStats") or []
        )
        return cls(
            raw["runId"],
            raw["jobName"],
            raw["status"],
            raw.get("creationTime"),
            raw.get("startTime"),
            raw.get("endTime"),
            {t["key"]: t["value"] for t in raw.get("tags", [])},
            steps,
        )


# Dagster's freshness health -> the app's words. WARNING only exists with a warn window (we set none).
FRESHNESS_STATES = {"HEALTHY": "fresh", "WARNING": "fresh", "DEGRADED": "stale"}


@dataclass(frozen=True)
class Freshness:
    """Dagster's freshness verdict on one asset: "fresh", "stale" or "unknown" (never updated, or not
    judged yet: the daemon judges about every 30 s), when it was last updated (epoch s) and the maximum age."""

    asset: str
    state: str
    last_updated: float | None = None
    max_age_hours: float | None = None

    def age_hours(self, now: float) -> float | None:
        return (now - self.last_updated) / 3600.0 if self.last_updated else None


# The schedule and the sensors the app shows and switches (nothing else may be switched through it).
AUTOMATIONS = ("daily_pipeline", "data_files_sensor", "run_failure_alerts")


@dataclass(frozen=True)
class Tick:
    """One evaluation of a schedule or sensor: status SUCCESS (started runs), SKIPPED (with why) or FAILURE."""

    status: str
    timestamp: float
    skip_reason: str | None = None
    run_ids: tuple[str, ...] = ()
    error: str | None = None


@dataclass(frozen=True)
class Automation:
    """A schedule or sensor as Dagster has it: on or off, its next tick (epoch s) and its last finished tick."""

    name: str
    kind: str  # "schedule" or "sensor"
    running: bool
    description: str | None = None
    cron: str | None = None
    timezone: str | None = None
    interval_seconds: int | None = None
    next_tick: float | None = None
    last_tick: Tick | None = None
    state_id: str = ""
    selector: dict[str, str] = field(default_factory=dict)
    metadata: dict[str, Any] = field(default_factory=dict)

    @property
    def alert_channels(self) -> list[str] | None:
        """The failure sensor's channels as its own process has them configured (None: not said)."""
        said = self.metadata.get("alert_channels")
        return None if said is None else [c.strip() for c in said.split(",") if c.strip() and c.strip() != "none"]

    @classmethod
    def from_graphql(cls, kind: str, raw: dict, selector: dict[str, str]) -> Automation:
        state = raw["scheduleState" if kind == "schedule" else "sensorState"]
        finished = [t for t in state.get("ticks") or [] if t["status"] != "STARTED"]
        last = (
            Tick(
                t["status"],
                t["timestamp"],
                t.get("skipReason"),
                tuple(t.get("runIds") or ()),
                (t.get("error") or {}).get("message"),
            )
            if (t := next(iter(finished), None))
            else None
        )
        return cls(
            raw["name"],
            kind,
            state["status"] == "RUNNING",
            raw.get("description"),
            raw.get("cronSchedule"),
            raw.get("executionTimezone"),
            raw.get("minIntervalSeconds"),
            (state.get("nextTick") or {}).get("timestamp"),
            last,
            raw["id"],
            {**selector, f"{kind}Name": raw["name"]},
            metadata_values(raw.get("metadataEntries") or []),
        )


@dataclass(frozen=True)
class Connection:
    host: str = "127.0.0.1"
    port: int = 3000
    use_https: bool = False
    token: str | None = None
    timeout: float = 10.0  # reads: a page waits this long at most
    # Launching a run makes the webserver fetch the job's plan from the code server and write the run: seconds
    # on a busy machine, so the client calls (submit, run status) may wait longer than a page's reads.
    launch_timeout: float = 60.0

    @property
    def base_url(self) -> str:
        return f"{'https' if self.use_https else 'http'}://{self.host}:{self.port}"

    @property
    def headers(self) -> dict[str, str]:
        # Dagster+ reads this header; a proxy in front of an open-source webserver can check it too.
        return {"Dagster-Cloud-Api-Token": self.token} if self.token else {}

    def run_url(self, run_id: str) -> str:
        return f"{self.base_url}/runs/{run_id}"


def metadata_values(entries: list[dict]) -> dict[str, Any]:
    """GraphQL metadata entries as {label: python value}."""
    out: dict[str, Any] = {}
    for entry in entries:
        for key in ("intValue", "floatValue", "text", "path", "mdStr", "boolValue"):
            if key in entry:
                out[entry["label"]] = entry[key]
                break
        else:
            if "jsonString" in entry:
                out[entry["label"]] = json.loads(entry["jsonString"])
    return out


def launched_by(tags: dict[str, str]) -> str:
    """Who started a run, from its tags."""
    if "dagster/schedule_name" in tags:
        return f"schedule ({tags['dagster/schedule_name']})"
    if "dagster/sensor_name" in tags:
        return f"sensor ({tags['dagster/sensor_name']})"
    if tags.get("recomart/launched_by") == "app":
        return f"RecoMart app ({tags.get('recomart/user', 'anonymous')})"
    if "dagster/from_ui" in tags or "user" in tags:
        return "Dagster UI"
    return "command line / API"


def _causes(exc: BaseException | None, limit: int = 10) -> Iterator[BaseException]:
    """An error and the errors behind it (a bounded walk down __cause__ / __context__)."""
    for _ in range(limit):
        if exc is None:
            return
        yield exc
        exc = exc.__cause__ or exc.__context__


def _refused_code(exc: BaseException) -> int | None:
    """401/403 behind a client error: the token is missing or wrong."""
    from gql.transport.exceptions import TransportServerError

    return next((e.code for e in _causes(exc) if isinstance(e, TransportServerError) and e.code in (401, 403)), None)


def _is_connection_problem(exc: BaseException) -> bool:
    """Whether an error (or any error behind it) is the network's or the server's, not the request's."""
    from gql.transport.exceptions import TransportConnectionFailed, TransportServerError

    problems = (requests.RequestException, TransportServerError, TransportConnectionFailed, OSError)
    return any(isinstance(e, problems) for e in _causes(exc))


class DagsterAPI:
    def __init__(self, connection: Connection):
        self.connection = connection
        # The GraphQL client's transport holds one connection at a time ("Transport is already
        # connected" when two threads share it), and one API object serves every app session: so
        # each thread gets its own client and HTTP session.
        self._local = threading.local()

    @property
    def _session(self) -> requests.Session:
        if not hasattr(self._local, "session"):
            self._local.session = requests.Session()
            self._local.session.headers.update(self.connection.headers)
        return self._local.session

    def _unavailable(self, exc: Exception) -> DagsterUnavailable:
        root = list(_causes(exc))[-1]
        if any(isinstance(e, requests.Timeout) for e in _causes(exc)):
            return DagsterUnavailable(
                f"The Dagster webserver at {self.connection.base_url} did not answer in time ({type(root).__name__}):"
                " it is busy or stuck. A refresh started just now may have begun all the same: look at the runs"
                " before starting another. If it stays silent, restart it with `./run_pipeline.sh ui`."
            )
        return DagsterUnavailable(
            f"The Dagster webserver at {self.connection.base_url} is not reachable ({type(root).__name__}). "
            f"Start it with `./run_pipeline.sh ui` (or `./run_pipeline.sh up` for the app and Dagster together), "
            f"or set DAGSTER_HOST / DAGSTER_PORT to where it runs."
        )

    @property
    def client(self):
        if not hasattr(self._local, "client"):
            from dagster_graphql import DagsterGraphQLClient

            c = self.connection
            try:
                self._local.client = DagsterGraphQLClient(
                    c.host,
                    port_number=c.port,
                    use_https=c.use_https,
                    headers=c.headers or None,
                    timeout=int(max(c.timeout, c.launch_timeout)),
                )
            except Exception as exc:  # the client may probe the server when it is built
                raise self._unavailable(exc) from exc
        return self._local.client

    def query(self, text: str, variables: dict | None = None) -> dict:
        try:
            response = self._session.post(
                f"{self.connection.base_url}/graphql",
                json={"query": text, "variables": variables or {}},
                timeout=self.connection.timeout,
            )
        except requests.RequestException as exc:
            raise self._unavailable(exc) from exc
        if response.status_code in (401, 403):
            raise DagsterRequestError(
                f"The Dagster webserver refused the request ({response.status_code}): check DAGSTER_TOKEN."
            )
        if response.status_code >= 500 or not response.ok:
            raise DagsterUnavailable(
                f"The Dagster webserver at {self.connection.base_url} answered "
                f"{response.status_code}; it may be restarting."
            )
        payload = response.json()
        if payload.get("errors"):
            raise DagsterRequestError("; ".join(e.get("message", str(e)) for e in payload["errors"]))
        return payload["data"]

    # --- status -------------------------------------------------------------------------------
    def server_info(self) -> dict:
        try:
            response = self._session.get(f"{self.connection.base_url}/server_info", timeout=self.connection.timeout)
            response.raise_for_status()
        except requests.RequestException as exc:
            raise self._unavailable(exc) from exc
        return response.json()

    def instance_info(self) -> dict:
        return self.query(INSTANCE_QUERY)

    # --- runs ---------------------------------------------------------------------------------
    def submit(
        self,
        job_name: str,
        run_config: dict | None = None,
        tags: dict[str, str] | None = None,
        assets: list[str] | None = None,
    ) -> str:
        """Submit a whitelisted job (only `assets` of it, when given); returns the run id."""
        if job_name not in JOBS:
            raise DagsterRequestError(f"Unknown job {job_name!r}: choose one of {', '.join(JOBS)}.")
        return self._call_client(
            lambda c: c.submit_job_execution(
                job_name, run_config=run_config or {}, tags=tags or {}, asset_selection=assets or None
            ),
            "Dagster refused the run",
        )

    # --- purchase files as partitions ---------------------------------------------------------
    def partition_keys(self, asset: str = "raw_transactions") -> list[str]:
        """The partition keys Dagster knows for the asset, in their order (one per purchase file)."""
        data = self.query(PARTITION_KEYS_QUERY, {"assetKey": {"path": [asset]}})["assetNodeOrError"]
        if data["__typename"] != "AssetNode":
            raise DagsterRequestError(f"Dagster does not know {asset!r}: is the RecoMart code location loaded?")
        return list(data["partitionKeys"] or [])

    def _repository_selector(self) -> dict[str, str]:
        found = next(iter(self.automations().values()), None)
        if found is None:
            raise DagsterRequestError("Dagster has no RecoMart code location loaded.")
        return {k: found.selector[k] for k in ("repositoryName", "repositoryLocationName")}

    def change_partitions(self, name: str, add: list[str], delete: list[str]) -> None:
        """Add partition keys (in order) and drop others, before a run names them in its range."""
        if not add and not delete:
            return
        selector = self._repository_selector()
        for key in add:
            result = self.query(ADD_PARTITION_MUTATION, {"selector": selector, "name": name, "key": key})
            answer = result["addDynamicPartition"]
            if answer["__typename"] not in ("AddDynamicPartitionSuccess", "DuplicateDynamicPartitionError"):
                raise DagsterRequestError(f"Dagster did not add the file {key}: {answer.get('message', '')}")
        if delete:
            result = self.query(DELETE_PARTITIONS_MUTATION, {"selector": selector, "name": name, "keys": delete})
            answer = result["deleteDynamicPartitions"]
            if answer["__typename"] != "DeleteDynamicPartitionsSuccess":
                raise DagsterRequestError(f"Dagster did not drop {', '.join(delete)}: {answer.get('message', '')}")

    def run_status(self, run_id: str) -> str:
        return self._call_client(lambda c: c.get_run_status(run_id).value, "Cannot read the run's status")

    def _call_client(self, call, what: str):
        """Run a client call, turning its errors into ours: unreachable vs refused."""
        from dagster_graphql import DagsterGraphQLClientError

        try:
            return call(self.client)
        except DagsterGraphQLClientError as exc:
            if _refused_code(exc):
                raise DagsterRequestError(
                    f"The Dagster webserver refused the request ({_refused_code(exc)}): check DAGSTER_TOKEN."
                ) from exc
            if _is_connection_problem(exc):
                raise self._unavailable(exc) from exc
            raise DagsterRequestError(f"{what}: {exc}") from exc
        except requests.RequestException as exc:
            raise self._unavailable(exc) from exc

    def runs(self, limit: int = 50, job_name: str | None = None, statuses: tuple[str, ...] | None = None) -> list[Run]:
        """Recent runs, newest first, with start/end times and who launched them."""
        run_filter: dict[str, Any] = {}
        if job_name:
            run_filter["pipelineName"] = job_name
        if statuses:
            run_filter["statuses"] = list(statuses)
        data = self.query(RUNS_QUERY, {"limit": limit, "filter": run_filter})["runsOrError"]
        if data["__typename"] != "Runs":
            raise DagsterRequestError(data.get("message", data["__typename"]))
        return [Run.from_graphql(r) for r in data["results"]]

    def run(self, run_id: str) -> Run:
        """One run with its steps."""
        data = self.query(RUN_QUERY, {"runId": run_id})["runOrError"]
        if data["__typename"] != "Run":
            raise DagsterRequestError(data.get("message", data["__typename"]))
        return Run.from_graphql(data)

    def active_runs(self) -> list[Run]:
        """Runs of our jobs that are queued or in progress."""
        return [r for r in self.runs(limit=20, statuses=ACTIVE_STATUSES) if r.job_name in JOBS]

    def failure_message(self, run_id: str) -> str | None:
        """Why a run failed, for the user: the quality gate's explanation, else the first step error."""
        data = self.query(RUN_EVENTS_QUERY, {"runId": run_id})["logsForRun"]
        events = data.get("events", []) if data["__typename"] == "EventConnection" else []
        for event in events:
            evaluation = event.get("evaluation") if event["__typename"] == "AssetCheckEvaluationEvent" else None
            if evaluation and not evaluation["success"] and evaluation["checkName"] in BLOCKING_CHECKS:
                return evaluation["description"]
        for event in events:
            if event["__typename"] in ("ExecutionStepFailureEvent", "ResourceInitFailureEvent") and event.get("error"):
                message = event["error"]["message"].strip().removeprefix("dagster._core.definitions.events.Failure: ")
                if "DagsterExecutionInterruptedError" in message:
                    return (
                        "The run was interrupted: the Dagster daemon or its machine stopped while it ran. "
                        "Nothing it had not finished was published; start the refresh again."
                    )
                return message
        return next((e.get("message") for e in events if e["__typename"] == "RunFailureEvent"), None)

    # --- schedule and sensors -----------------------------------------------------------------
    def automations(self) -> dict[str, Automation]:
        """The schedule and the sensors of AUTOMATIONS, by name, as the Dagster UI shows them."""
        data = self.query(AUTOMATION_QUERY)["repositoriesOrError"]
        if data["__typename"] != "RepositoryConnection":
            raise DagsterRequestError(data.get("message", data["__typename"]))
        found: dict[str, Automation] = {}
        for repo in data["nodes"]:
            selector = {"repositoryName": repo["name"], "repositoryLocationName": repo["location"]["name"]}
            for kind, key in (("schedule", "schedules"), ("sensor", "sensors")):
                for raw in repo[key]:
                    if raw["name"] in AUTOMATIONS:
                        found[raw["name"]] = Automation.from_graphql(kind, raw, selector)
        return found

    def set_automation(self, name: str, on: bool) -> Automation:
        """Switch a schedule or sensor on or off; returns its state as Dagster reads it afterwards.

        Callers check the user's role first (access.require_operator()); Dagster OSS has no roles of its own.
        """
        if name not in AUTOMATIONS:
            raise DagsterRequestError(f"Unknown schedule or sensor {name!r}: choose one of {', '.join(AUTOMATIONS)}.")
        current = self.automations().get(name)
        if current is None:
            raise DagsterRequestError(f"Dagster does not know {name!r}: is the RecoMart code location loaded?")
        if current.running != on:
            if current.kind == "schedule":
                text, variables = (
                    (START_SCHEDULE_MUTATION, {"selector": current.selector})
                    if on
                    else (STOP_SCHEDULE_MUTATION, {"id": current.state_id})
                )
            else:
                text, variables = (
                    (START_SENSOR_MUTATION, {"selector": current.selector})
                    if on
                    else (STOP_SENSOR_MUTATION, {"id": current.state_id})
                )
            result = next(iter(self.query(text, variables).values()))
            if "message" in result:
                raise DagsterRequestError(f"Dagster did not switch {name} {'on' if on else 'off'}: {result['message']}")
        return self.automations()[name]

    # --- assets -------------------------------------------------------------------------------
    def materializations(self, asset: str, limit: int = 20) -> list[dict]:
        """Latest materializations of an asset, newest first: run id, time (epoch s) and metadata."""
        data = self.query(MATERIALIZATIONS_QUERY, {"assetKey": {"path": [asset]}, "limit": limit})["assetOrError"]
        if data["__typename"] != "Asset":
            return []
        return [
            {
                "run_id": m["runId"],
                "timestamp": float(m["timestamp"]) / 1000.0,
                "metadata": metadata_values(m["metadataEntries"]),
            }
            for m in data["assetMaterializations"]
        ]

    def latest_materializations(self, assets: list[str]) -> dict[str, dict | None]:
        """Each asset's latest materialization (None for an asset never materialized)."""
        return {asset: next(iter(self.materializations(asset, limit=1)), None) for asset in assets}

    def _latest_execution(self, asset_path: list[str], check_name: str) -> dict:
        """The newest execution that has a result (a run refused before its steps plans checks it never runs)."""
        found = self.query(CHECK_EXECUTIONS_QUERY, {"assetKey": {"path": asset_path}, "checkName": check_name})
        executions = found["assetCheckExecutions"] or [{}]
        return next((e for e in executions if e.get("evaluation")), executions[0])

    def freshness(self, assets: tuple[str, ...] = WATCHED_ASSETS) -> dict[str, Freshness]:
        """Dagster's freshness verdict per asset (assets without a policy are left out)."""
        keys = [{"path": [a]} for a in assets]
        out: dict[str, Freshness] = {}
        for node in self.query(FRESHNESS_QUERY, {"assetKeys": keys})["assetNodes"]:
            policy = node.get("internalFreshnessPolicy") or {}
            if "failWindowSeconds" not in policy:
                continue
            name = "/".join(node["assetKey"]["path"])
            info = node.get("freshnessStatusInfo") or {}
            latest = next(iter(node.get("assetMaterializations") or []), None)
            updated = (info.get("freshnessStatusMetadata") or {}).get("lastMaterializedTimestamp")
            if latest:
                updated = float(latest["timestamp"]) / 1000.0
            out[name] = Freshness(
                name,
                FRESHNESS_STATES.get(info.get("freshnessStatus", ""), "unknown"),
                updated,
                policy["failWindowSeconds"] / 3600.0,
            )
        return out

    def check_results(self) -> list[dict]:
        """Every asset check with its latest evaluation."""
        rows = []
        for node in self.query(CHECKS_QUERY)["assetNodes"]:
            checks = node["assetChecksOrError"]
            for check in checks.get("checks", []) if checks["__typename"] == "AssetChecks" else []:
                # A run outside the queue can record its evaluation against an older materialization;
                # then the latest evaluation is what the user wants to see.
                execution = check.get("executionForLatestMaterialization") or {}
                if not execution.get("evaluation"):
                    execution = self._latest_execution(node["assetKey"]["path"], check["name"])
                evaluation = execution.get("evaluation") or {}
                meta = metadata_values(evaluation.get("metadataEntries", []))
                rows.append(
                    {
                        "asset": "/".join(node["assetKey"]["path"]),
                        "check": check["name"],
                        "description": check.get("description"),
                        "blocking": check["blocking"],
                        "status": execution.get("status", "NOT_RUN"),
                        "passed": evaluation.get("success"),
                        "severity": evaluation.get("severity"),
                        "failing_rows": meta.get("failing_rows"),
                        "total_rows": meta.get("total_rows"),
                        "skipped": bool(meta.get("skipped", False)),
                        "examples": meta.get("examples") or [],
                        "result_description": evaluation.get("description"),
                        "run_id": execution.get("runId"),
                        "timestamp": execution.get("timestamp"),
                    }
                )
        return rows
