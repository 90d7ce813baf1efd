from airflow.operators.bash import BashOperator

__all__ = ["BashOperator"]
