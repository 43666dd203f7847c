"""StopExecution as on AWS: the execution is ABORTED at once.

moto 5.2.5's Step Functions engine only marks a stopped execution ABORTED
when its worker ends, which is after the Task under way returns: a Lambda
still running (a load attack, a wait chunk) keeps its execution RUNNING in
DescribeExecution until it is done. On AWS the status is ABORTED as soon
as StopExecution answers, and the task's invocation carries on unaware.
Turbulence's long activities watch their execution's status to stop
themselves, so the local stack must show what AWS shows.

`install()` patches the engine's Execution.stop; `local/test_stack.py`
checks it (and fails if moto ever does this itself or renames the class).
"""

from __future__ import annotations

import datetime
from typing import Any


def install() -> None:
    from moto.stepfunctions.parser.api import ExecutionStatus
    from moto.stepfunctions.parser.backend.execution import Execution

    original = Execution.stop

    def stop(self: Any, stop_date: datetime.datetime, error: str | None, cause: str | None) -> None:
        original(self, stop_date=stop_date, error=error, cause=cause)
        if self.exec_status == ExecutionStatus.RUNNING:
            self.exec_status = ExecutionStatus.ABORTED
            self.stop_date = stop_date
            if error is not None:
                self.error = error
            if cause is not None:
                self.cause = cause

    Execution.stop = stop  # type: ignore[method-assign]
