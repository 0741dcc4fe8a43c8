"""The binary's credential variables, built from Airflow Connections (local runner only).

Credentials live in Airflow Connections (or a secrets backend behind them), never in
code. A Connection that does not exist adds nothing: the worker's own environment
(or the AWS default chain, e.g. an instance role) is used as it is.
"""

import base64
import logging

from marketing_pipeline_tasks.compat import AirflowNotFoundException, BaseHook

AWS_CONN_ID = "aws_default"
SNOWFLAKE_CONN_ID = "snowflake_default"

log = logging.getLogger(__name__)


def connection_or_none(conn_id: str):
    try:
        return BaseHook.get_connection(conn_id)
    except AirflowNotFoundException:
        return None


def aws_env(conn) -> dict[str, str]:
    """Amazon provider's `aws` Connection: login/password are the key pair; extra holds the rest."""
    extra = conn.extra_dejson
    return _present(
        AWS_ACCESS_KEY_ID=conn.login,
        AWS_SECRET_ACCESS_KEY=conn.password,
        AWS_SESSION_TOKEN=extra.get("aws_session_token"),
        AWS_REGION=extra.get("region_name"),
        AWS_ENDPOINT_URL=extra.get("endpoint_url"),
    )


def snowflake_env(conn) -> dict[str, str]:
    """Snowflake provider's Connection: account, warehouse, database, role and keys in extra."""
    extra = conn.extra_dejson
    # The provider stores the key content base64-encoded; the binary wants the PEM text.
    key_content = extra.get("private_key_content")
    private_key = base64.b64decode(key_content).decode() if key_content else None
    key_file = extra.get("private_key_file")
    # As in the Snowflake provider: with a private key, the password is the key's passphrase.
    uses_key = bool(private_key or key_file)
    return _present(
        SNOWFLAKE_ACCOUNT=extra.get("account"),
        SNOWFLAKE_USER=conn.login,
        SNOWFLAKE_ROLE=extra.get("role"),
        SNOWFLAKE_WAREHOUSE=extra.get("warehouse"),
        SNOWFLAKE_DATABASE=extra.get("database"),
        SNOWFLAKE_PRIVATE_KEY=private_key,
        SNOWFLAKE_PRIVATE_KEY_PATH=key_file,
        SNOWFLAKE_PRIVATE_KEY_PASSPHRASE=conn.password if uses_key else None,
        SNOWFLAKE_PASSWORD=None if uses_key else conn.password,
    )


def credentials_env() -> dict[str, str]:
    """AWS_* and SNOWFLAKE_* variables from the Connections that exist."""
    env: dict[str, str] = {}
    for conn_id, to_env in ((AWS_CONN_ID, aws_env), (SNOWFLAKE_CONN_ID, snowflake_env)):
        conn = connection_or_none(conn_id)
        if conn is None:
            log.info(
                "No Airflow Connection %r: its settings come from the worker's environment", conn_id
            )
        else:
            env.update(to_env(conn))
    return env


def _present(**values: str | None) -> dict[str, str]:
    return {name: value for name, value in values.items() if value}
