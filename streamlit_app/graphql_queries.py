"""The GraphQL queries the app sends to the Dagster webserver, kept together and tested against a live one.

What `DagsterGraphQLClient` cannot do (list runs with times and step stats, read materialization
metadata, check results, failure reasons, daemon health) is asked with these. Times come back as
float epoch seconds, except `timestamp` of materializations and check executions: epoch milliseconds.
"""

METADATA_FIELDS = """
    label
    __typename
    ... on IntMetadataEntry { intValue }
    ... on FloatMetadataEntry { floatValue }
    ... on TextMetadataEntry { text }
    ... on JsonMetadataEntry { jsonString }
    ... on PathMetadataEntry { path }
    ... on MarkdownMetadataEntry { mdStr }
    ... on BoolMetadataEntry { boolValue }
"""

RUN_FIELDS = """
    runId
    jobName
    status
    creationTime
    startTime
    endTime
    tags { key value }
"""

RUNS_QUERY = f"""
query Runs($limit: Int, $filter: RunsFilter) {{
  runsOrError(limit: $limit, filter: $filter) {{
    __typename
    ... on Runs {{ results {{ {RUN_FIELDS} }} }}
    ... on PythonError {{ message }}
  }}
}}
"""

RUN_QUERY = f"""
query Run($runId: ID!) {{
  runOrError(runId: $runId) {{
    __typename
    ... on Run {{
      {RUN_FIELDS}
      stepStats {{ stepKey status startTime endTime }}
    }}
    ... on RunNotFoundError {{ message }}
    ... on PythonError {{ message }}
  }}
}}
"""

RUN_EVENTS_QUERY = """
query RunFailure($runId: ID!) {
  logsForRun(runId: $runId, limit: 2000) {
    __typename
    ... on EventConnection {
      events {
        __typename
        ... on MessageEvent { message level stepKey }
        ... on ExecutionStepFailureEvent { error { message } }
        ... on ResourceInitFailureEvent { error { message } }
        ... on RunFailureEvent { message }
        ... on AssetCheckEvaluationEvent { evaluation { success severity description checkName } }
      }
    }
  }
}
"""

MATERIALIZATIONS_QUERY = f"""
query Materializations($assetKey: AssetKeyInput!, $limit: Int) {{
  assetOrError(assetKey: $assetKey) {{
    __typename
    ... on Asset {{
      assetMaterializations(limit: $limit) {{
        runId
        timestamp
        metadataEntries {{ {METADATA_FIELDS} }}
      }}
    }}
  }}
}}
"""

CHECKS_QUERY = f"""
query Checks {{
  assetNodes {{
    assetKey {{ path }}
    assetChecksOrError {{
      __typename
      ... on AssetChecks {{
        checks {{
          name
          description
          blocking
          executionForLatestMaterialization {{
            runId
            status
            timestamp
            evaluation {{ success severity description metadataEntries {{ {METADATA_FIELDS} }} }}
          }}
        }}
      }}
    }}
  }}
}}
"""

CHECK_EXECUTIONS_QUERY = f"""
query CheckExecutions($assetKey: AssetKeyInput!, $checkName: String!) {{
  assetCheckExecutions(assetKey: $assetKey, checkName: $checkName, limit: 10) {{
    runId
    status
    timestamp
    evaluation {{ success severity description metadataEntries {{ {METADATA_FIELDS} }} }}
  }}
}}
"""

INSTANCE_QUERY = """
query Instance {
  version
  instance {
    runQueueConfig { maxConcurrentRuns }
    daemonHealth { allDaemonStatuses { daemonType healthy required } }
  }
}
"""

# Dagster's own freshness verdict (the daemon re-judges about every 30 s) and the policy's maximum age.
FRESHNESS_QUERY = """
query Freshness($assetKeys: [AssetKeyInput!]) {
  assetNodes(assetKeys: $assetKeys) {
    assetKey { path }
    internalFreshnessPolicy {
      __typename
      ... on TimeWindowFreshnessPolicy { failWindowSeconds }
    }
    freshnessStatusInfo {
      freshnessStatus
      freshnessStatusMetadata { lastMaterializedTimestamp }
    }
    assetMaterializations(limit: 1) { timestamp }
  }
}
"""

# The schedule and the sensors: on/off, next and last tick. Their ids and the repository selector come
# back with them, for the switches below.
INSTIGATION_STATE_FIELDS = """
    id
    status
    nextTick { timestamp }
    ticks(limit: 3) { status timestamp skipReason runIds error { message } }
"""

AUTOMATION_QUERY = f"""
query Automation {{
  repositoriesOrError {{
    __typename
    ... on RepositoryConnection {{
      nodes {{
        name
        location {{ name }}
        schedules {{
          id name description cronSchedule executionTimezone
          scheduleState {{ {INSTIGATION_STATE_FIELDS} }}
        }}
        sensors {{
          id name description minIntervalSeconds
          metadataEntries {{ {METADATA_FIELDS} }}
          sensorState {{ {INSTIGATION_STATE_FIELDS} }}
        }}
      }}
    }}
    ... on PythonError {{ message }}
  }}
}}
"""

START_SCHEDULE_MUTATION = """
mutation StartSchedule($selector: ScheduleSelector!) {
  startSchedule(scheduleSelector: $selector) {
    __typename
    ... on ScheduleStateResult { scheduleState { status } }
    ... on Error { message }
  }
}
"""

STOP_SCHEDULE_MUTATION = """
mutation StopSchedule($id: String!) {
  stopRunningSchedule(id: $id) {
    __typename
    ... on ScheduleStateResult { scheduleState { status } }
    ... on Error { message }
  }
}
"""

START_SENSOR_MUTATION = """
mutation StartSensor($selector: SensorSelector!) {
  startSensor(sensorSelector: $selector) {
    __typename
    ... on Sensor { sensorState { status } }
    ... on Error { message }
  }
}
"""

STOP_SENSOR_MUTATION = """
mutation StopSensor($id: String!) {
  stopSensor(id: $id) {
    __typename
    ... on StopSensorMutationResult { instigationState { status } }
    ... on Error { message }
  }
}
"""

# The purchase files as partitions of raw_transactions: the keys Dagster knows, and adding or dropping
# one before a refresh names its range (the repository selector comes from the automation query).
PARTITION_KEYS_QUERY = """
query PartitionKeys($assetKey: AssetKeyInput!) {
  assetNodeOrError(assetKey: $assetKey) {
    __typename
    ... on AssetNode { partitionKeys }
  }
}
"""

ADD_PARTITION_MUTATION = """
mutation AddPartition($selector: RepositorySelector!, $name: String!, $key: String!) {
  addDynamicPartition(repositorySelector: $selector, partitionsDefName: $name, partitionKey: $key) {
    __typename
    ... on AddDynamicPartitionSuccess { partitionKey }
    ... on DuplicateDynamicPartitionError { partitionName }
    ... on Error { message }
  }
}
"""

DELETE_PARTITIONS_MUTATION = """
mutation DeletePartitions($selector: RepositorySelector!, $name: String!, $keys: [String!]!) {
  deleteDynamicPartitions(repositorySelector: $selector, partitionsDefName: $name, partitionKeys: $keys) {
    __typename
    ... on DeleteDynamicPartitionsSuccess { partitionsDefName }
    ... on Error { message }
  }
}
"""
