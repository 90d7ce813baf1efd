from airflow import DAG


class BashOperator:
    def __init__(self, *, task_id, bash_command, env=None, append_env=False, cwd=None, execution_timeout=None):
        self.task_id = task_id
        self.bash_command = bash_command
        self.env = env
        self.append_env = append_env
        self.cwd = cwd
        self.execution_timeout = execution_timeout
        DAG.current.tasks.append(self)
