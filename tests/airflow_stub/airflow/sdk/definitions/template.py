class LiteralValue:
    """A value Airflow renders as it is (airflow.sdk.definitions.template.literal)."""

    def __init__(self, value):
        self.value = value


def literal(value):
    return LiteralValue(value)
