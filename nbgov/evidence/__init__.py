"""Evidence for auditors: reports, bundles and their standalone verifier."""
