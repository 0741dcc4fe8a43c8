"""The local runner: the binary as a subprocess on the Airflow worker (Compose, CI)."""

import json
import os
import shlex
import subprocess
import tempfile

from marketing_pipeline_tasks.compat import BaseOperator
from marketing_pipeline_tasks.connections import credentials_env
from marketing_pipeline_tasks.exit_codes import BUG, CONFIG, OK, raise_for_exit_code
from marketing_pipeline_tasks.lineage import PipelineTaskOutcome


def parse_metrics(stdout: str) -> dict | None:
    """The metrics JSON object: the last non-empty stdout line, or None when there is none."""
    lines = [line for line in stdout.splitlines() if line.strip()]
    if not lines:
        return None
    try:
        metrics = json.loads(lines[-1])
    except json.JSONDecodeError:
        return None
    return metrics if isinstance(metrics, dict) else None


class PipelineBinaryOperator(PipelineTaskOutcome, BaseOperator):
    """Runs `binary *arguments` with the worker's environment plus `env` and credentials.

    The binary's stderr (its JSON logs) streams into the task log; the last stdout
    line, the metrics JSON, becomes the XCom, also when the task fails or skips, so
    branches and alerts can read why. Exit codes map as in `exit_codes`.
    """

    template_fields = ("arguments", "env")
    ui_color = "#f4d9c6"

    def __init__(self, *, binary: str, arguments: list[str], env: dict[str, str], **kwargs):
        super().__init__(**kwargs)
        self.binary = binary
        self.arguments = arguments
        self.env = env
        self._process: subprocess.Popen | None = None

    def execute(self, context):
        env = {**os.environ, **credentials_env(), **self.env}
        # The metrics come back on stdout; parallel tasks must not share one XCom file.
        env.pop("PIPELINE_XCOM_FILE", None)
        command = [self.binary, *self.arguments]
        self.log.info("Running %s", shlex.join(command))
        with tempfile.TemporaryFile(mode="w+", encoding="utf-8", errors="replace") as stdout:
            try:
                self._process = subprocess.Popen(
                    command,
                    env=env,
                    stdout=stdout,
                    stderr=subprocess.PIPE,
                    encoding="utf-8",
                    errors="replace",
                )
            except OSError as error:
                raise_for_exit_code(CONFIG, f"PIPELINE_BINARY {self.binary!r} cannot run: {error}")
            for line in self._process.stderr:
                self.log.info("%s", line.rstrip("\n"))
            exit_code = self._process.wait()
            stdout.seek(0)
            metrics = parse_metrics(stdout.read())

        self.log.info("Exit code %s, metrics: %s", exit_code, json.dumps(metrics))
        if exit_code == OK:
            if metrics is None:
                raise_for_exit_code(BUG, "exited 0 without a metrics JSON line on stdout")
            self.record_outcome(context, metrics)
            return metrics
        if metrics is not None:
            context["ti"].xcom_push(key="return_value", value=metrics)
        raise_for_exit_code(exit_code, (metrics or {}).get("error"))

    def on_kill(self):
        if self._process is not None and self._process.poll() is None:
            self._process.terminate()
