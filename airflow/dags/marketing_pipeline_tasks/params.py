"""The DAG's params: what the trigger form shows, and the binary setting each becomes."""

from marketing_pipeline_tasks.compat import Param

PARAMS = {
    "scale_factor": Param(
        1,
        type="number",
        exclusiveMinimum=0,
        maximum=10000,
        title="Scale factor (synthetic data volume)",
        description=(
            "How much data generate writes for the day: 1 is 10,000 contacts, 20,000 form "
            "fills and 50,000 website sessions; 100 is a hundred times that. Only generate "
            "reads it (the binary's SCALE_FACTOR)."
        ),
    ),
    "defect_rate": Param(
        0.01,
        type="number",
        minimum=0,
        maximum=1,
        title="Defect rate (share of bad rows generated)",
        description=(
            "The share of generated rows given a deliberate defect (a bad email, a missing key, "
            "a duplicate, ...) for validate to catch and quarantine: 0 generates clean data, "
            "0.01 one row in a hundred (the binary's PIPELINE_DEFECT_RATE)."
        ),
    ),
}
