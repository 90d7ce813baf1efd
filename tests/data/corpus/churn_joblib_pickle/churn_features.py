"""Feature preparation shared by the churn notebooks (imported by both)."""

PLANS = ["prepaid", "basic", "unlimited"]


def to_features(frame):
    """The model's inputs from a subscriber extract: identifiers and the label dropped, plan encoded."""
    out = frame.drop(columns=["subscriber_id", "churned"])
    out["plan"] = out["plan"].map({plan: code for code, plan in enumerate(PLANS)})
    return out
