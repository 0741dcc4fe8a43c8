"""The binary's exit codes (README "Exit codes") mapped to Airflow outcomes, for both runners."""

from marketing_pipeline_tasks.compat import (
    AirflowException,
    AirflowFailException,
    AirflowSkipException,
)

OK = 0
BUG = 1
USAGE = 2
DATA_REJECTED = 65
TRANSIENT = 75
CONFIG = 78
NOTHING_TO_DO = 99

MEANINGS = {
    BUG: "bug",
    USAGE: "usage error",
    DATA_REJECTED: "data rejected",
    TRANSIENT: "transient infrastructure error",
    CONFIG: "configuration error",
    NOTHING_TO_DO: "nothing to do",
}

# Retrying cannot fix these: the input or the setup has to change first.
NO_RETRY = frozenset({USAGE, DATA_REJECTED, CONFIG})


def raise_for_exit_code(exit_code: int, error: str | None = None) -> None:
    """Return on 0; otherwise raise what Airflow needs to skip, fail, or fail and retry.

    99 skips; 2, 65 and 78 fail without retry; 1, 75 and anything else (a signal,
    an unknown code) fail and are retried. The exception carries `exit_code` so
    callbacks can tell the cases apart.
    """
    if exit_code == OK:
        return
    meaning = MEANINGS.get(exit_code, "unexpected exit code")
    message = f"exit code {exit_code} ({meaning})" + (f": {error}" if error else "")
    if exit_code == NOTHING_TO_DO:
        exception = AirflowSkipException(message)
    elif exit_code in NO_RETRY:
        exception = AirflowFailException(message)
    else:
        exception = AirflowException(message)
    exception.exit_code = exit_code
    raise exception
