"""Redaction: secrets never reach the ledger.

Cell sources, error messages and recorded parameters pass through here before they are hashed.
Two kinds of evidence mark a secret:

- a *name* that says so (``password``, ``api_key``, ``clientSecret``, ``AWS_SECRET_ACCESS_KEY``, ...;
  see :func:`looks_secret_name`) bound to a *literal* value, in the shapes notebooks contain:
  Python assignments, keyword arguments and dict entries, ``NAME=value`` environment and shell
  lines, ``--flag value`` options, ``%env NAME value``, YAML ``name: value`` lines, INI files,
  ``os.environ.get("NAME", "x")``, ``auth=("user", "pw")`` pairs and ``.login(user, "pw")``
  calls. Only the value is replaced, so the audit trail still reads ``password = "[REDACTED]"``;
- a *format* that is a secret wherever it appears: PEM private keys, passwords in URLs, AWS access
  key ids (and secret keys next to their name), GitHub, GitLab, Slack, Google, OpenAI/Anthropic,
  Stripe, Hugging Face, npm and PyPI tokens, JWTs, ``Bearer`` tokens and ``Basic`` credentials.

A value that is plainly not a literal secret is left alone: a call (``get_token()``), an attribute
or subscript (``os.environ["PW"]``), ``None``/``True``/``null``, an empty string, a reference or
template (``$PW``, ``{token}``, ``%(pw)s``, ``<your-key>``). A bare word after ``name = `` (spaces,
no quotes) is a Python variable, not a value, except in an INI ``[section]``. Redaction is
idempotent: the marker is never redacted again.

Cost: ordinary text is lower-cased and searched for a dozen substrings that every finding contains
(a few microseconds for a notebook cell); the patterns, compiled on first use, run only then.

The name rule is :mod:`nbgov.redaction.names`; the patterns and redacting text,
:mod:`nbgov.redaction.text`; values and the session's memory of secrets,
:mod:`nbgov.redaction.values`. Every name is importable from here.
"""

from nbgov.redaction.names import looks_secret_name
from nbgov.redaction.text import REDACTED, redact_text
from nbgov.redaction.values import SecretMemory, redact_value, removed_values

__all__ = ["REDACTED", "SecretMemory", "looks_secret_name", "redact_text", "redact_value", "removed_values"]
