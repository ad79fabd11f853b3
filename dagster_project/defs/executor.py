"""The executor every job runs on: in-process by default, multiprocess when run config asks.

On small data a process per step costs more (~4 s each on two cores) than the work. Large data can
switch by run config: `execution: {config: {multiprocess: {max_concurrent: 2}}}`. This is Dagster's
own `multi_or_in_process_executor` with the other default.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import dagster as dg


def _requirements(config: Mapping[str, object]) -> Sequence[dg.ExecutorRequirement]:
    """Multiprocess needs what Dagster's multiprocess executor needs (a persistent instance, ...)."""
    return dg.multiple_process_executor_requirements() if "multiprocess" in config else []


@dg.executor(
    name="in_process_or_multiprocess",
    config_schema=dg.Field(
        dg.multi_or_in_process_executor.config_schema.config_type, default_value={"in_process": {}}, is_required=False
    ),
    requirements=_requirements,
)
def in_process_or_multiprocess(init_context: dg.InitExecutorContext) -> dg.Executor:
    """In-process by default; multiprocess when run config asks for it."""
    return dg.multi_or_in_process_executor.executor_creation_fn(init_context)


@dg.definitions
def executor() -> dg.Definitions:
    return dg.Definitions(executor=in_process_or_multiprocess)
