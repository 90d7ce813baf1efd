from airflow import DAG


class BashOperator:
    def __init__(self, *, task_id, bash_command, execution_timeout=None):
        self.task_id = task_id
        self.bash_command = bash_command
        self.execution_timeout = execution_timeout
        DAG.current.tasks.append(self)
