"""The binary's exit codes mapped to Airflow outcomes, for both runners.

The codes, their meanings and what Airflow does with each (`airflow`: success, skip,
fail without retry, retry) come from the binary's interface (interface.json); nothing
here repeats them. The names below are the codes this package itself raises or tests for.
"""

from marketing_pipeline_tasks.compat import (
    AirflowException,
    AirflowFailException,
    AirflowSkipException,
)
from marketing_pipeline_tasks.interface import FAIL, RETRY, SKIP, SUCCESS, interface

_EXIT_CODES = interface().exit_codes


def _code(name: str) -> int:
    return interface().exit_code(name).code


OK = _code("success")
BUG = _code("bug")
USAGE = _code("usage")
DATA_REJECTED = _code("data_rejected")
TRANSIENT = _code("transient")
CONFIG = _code("config")
NOTHING_TO_DO = _code("nothing_to_do")

MEANINGS = {c.code: c.meaning for c in _EXIT_CODES}
# Exit code -> what Airflow does: SUCCESS, SKIP, FAIL or RETRY. Any other code (a signal,
# an OOM kill) is retried.
OUTCOMES = {c.code: c.airflow for c in _EXIT_CODES}
SKIPPED = frozenset(code for code, outcome in OUTCOMES.items() if outcome == SKIP)
# Retrying cannot fix these: the input or the setup has to change first.
NO_RETRY = frozenset(code for code, outcome in OUTCOMES.items() if outcome == FAIL)
RETRIED = frozenset(code for code, outcome in OUTCOMES.items() if outcome == RETRY)

_EXCEPTIONS = {SKIP: AirflowSkipException, FAIL: AirflowFailException, RETRY: AirflowException}


def raise_for_exit_code(exit_code: int, error: str | None = None) -> None:
    """Return on success; otherwise raise what Airflow needs to skip, fail, or fail and retry.

    The interface's `airflow` field decides: skip raises AirflowSkipException, fail
    AirflowFailException (no retry), retry AirflowException; a code the interface does
    not list (a signal, an OOM kill) is retried. The exception carries `exit_code` so
    callbacks can tell the cases apart.
    """
    outcome = OUTCOMES.get(exit_code, RETRY)
    if outcome == SUCCESS:
        return
    meaning = MEANINGS.get(exit_code, "unexpected exit code")
    message = f"exit code {exit_code} ({meaning})" + (f": {error}" if error else "")
    exception = _EXCEPTIONS[outcome](message)
    exception.exit_code = exit_code
    raise exception
