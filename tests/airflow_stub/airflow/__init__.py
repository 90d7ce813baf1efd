"""A minimal stand-in for Airflow's DAG API, used when Airflow itself is not installed.

It records what a DAG file declares (the DAG's arguments and its operators) so a test can check
an exported DAG; CI also imports the same files with real Airflow (NBGOV_TEST_AIRFLOW_PYTHON).
"""

DAGS = []


class DAG:
    current = None

    def __init__(self, dag_id, *, schedule, start_date, catchup, max_active_runs, tags, default_args):
        self.dag_id = dag_id
        self.schedule = schedule
        self.start_date = start_date
        self.catchup = catchup
        self.max_active_runs = max_active_runs
        self.tags = tags
        self.default_args = default_args
        self.tasks = []

    def __enter__(self):
        DAG.current = self
        DAGS.append(self)
        return self

    def __exit__(self, *exc):
        DAG.current = None
        return False
