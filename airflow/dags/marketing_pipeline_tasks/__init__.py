"""Helpers of the marketing_pipeline DAG: settings, the two task runners, exit codes, alerts."""
