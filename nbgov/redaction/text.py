"""Redacting text (:func:`redact_text`): the catalogue of patterns that find secrets, and the passes
that apply them.

The catalogue: the prefilter's needles (a text none of them occurs in is left at once), the
shapes of values (quoted, bare, placeholders, auth schemes, code that is no literal) and the token
formats recognised anywhere. The passes: PEM private keys first, then names bound to literal
values (judged by :func:`nbgov.redaction.names.looks_secret_name`), then formats, then the bare
``name = value`` lines of INI sections; each replaces the secret alone with :data:`REDACTED`.
"""

from __future__ import annotations

import base64
import binascii
import functools
import re
from collections.abc import Callable
from dataclasses import dataclass

from nbgov.redaction.names import looks_secret_name

__all__ = ["REDACTED", "redact_text"]

#: What a secret is replaced with.
REDACTED = "[REDACTED]"

# --- the prefilter ----------------------------------------------------------------------------
# Every finding contains one of these (in the lower-cased text). Each pattern starts with a literal
# character, which sre finds as fast as ``in`` does, so grouping needles by a rare first letter
# ("ken" stands for token, "kia" for AKIA) checks them all in a dozen quick scans; a regex
# alternation of all needles would test every position instead and cost several times more.
_PREFILTER = (
    r"k(?:ey|en|ia|[-_]|s\.slack)",  # key, token, AKIA, sk-/sk_/rk_, hooks.slack.com
    r"p(?:ass|wd|m_|ypi-)",  # password, pwd, npm_, pypi-
    r"cre[dt]",  # credentials, secret
    r"auth",  # auth, authorization, HTTPBasicAuth
    r"asia",  # ASIA (temporary AWS key id)
    r"aiza",  # Google API key
    r"l(?:pat-|ogin\()",  # glpat- (GitLab), .login(user, "pw")
    r"x(?:ox|-)",  # xox (Slack), GOCSPX- (Google)
    r"y(?:a29\.|j)",  # ya29. (Google), eyJ (JWT)
    r"h(?:f_|[pousr]_|ub_pat_|sec_)",  # hf_, ghp_ and friends, github_pat_, whsec_
    r"b(?:earer|asic)",
    r"@",  # user:password@host
    r"-u",  # curl -u / --user
)
#: Every secret name contains one of these (lower-cased); the name patterns run only then.
_NAME_NEEDLES = ("pass", "pwd", "secret", "token", "key", "cred", "auth")

# --- value shapes -------------------------------------------------------------------------------

_NAME = r"[A-Za-z_][\w.-]*+"
_QUOTED = r"""(?P<prefix>[rRbBuUfF]{0,2})(?:(?P<tq>\"\"\"|''')(?P<tvalue>[\s\S]*?)(?P=tq)
    |(?P<sq>["'])(?P<svalue>(?:\\.|(?!(?P=sq))[^\\\r\n])*+)(?P=sq))"""
#: Values that only refer to a secret kept elsewhere.
_PLACEHOLDER = r"""\{\{.*?\}\}|\$\{[^}]*\}|\$\w+|\{[^{}]*\}|%\(\w+\)[sdr]|%[sdr]|<[^<>\s]+>"""
#: An auth scheme is kept in front of the marker: ``Bearer [REDACTED]`` still says what it was.
_SCHEME = r"(?i:bearer|basic|token|digest|bot|apikey|sso-key)(?:[ \t]+|$)"
#: A bare (unquoted) value that is code or configuration syntax, not a literal.
_CODE = r"""(?x)
    (?i:none|null|nil|true|false|undefined|yes|no|on|off|~)
    | -?\d{1,3}                                               # too short for a secret: a count, a flag
    | .*\w\(.*                                                # a call: get_token()
    | [A-Za-z_]\w{0,30}(?:\.[A-Za-z_]\w{0,30})+(?:[\[(].*)?   # attributes: settings.pw, os.environ[
    | [A-Za-z_]\w*\[.*                                        # a subscript: secrets["db"]
    | [$\[(].* | [*&][A-Za-z_]\w* | \*+                       # $(cmd), lists, YAML anchors/aliases, ****
    | !!?[A-Za-z]+(?:[ \t].*)?                                # a YAML tag: !vault |
    | (?:str|bytes|Any|SecretStr|SecretBytes)(?:,.*)?         # annotation, numpydoc: str, optional
    | [\w.\[\]]+(?:[ \t]*\|[ \t]*[\w.\[\]]+)+                 # a union: token: str | None
    | [A-Za-z_][\w.\[\], |]*[ \t]+=(?!=).*                    # an annotated assignment: token: str = ...
    | .*,                                                     # a Python dict entry: token: count,
    | .*(?:%[sdr]|\{\w*\}).*                                  # a message template: "pwd: expected %s"
"""
#: A quoted "value" that is really the code between two string literals: in
#: ``print("password:", pw, "!")`` the quotes around ``, pw, `` close one string and open another.
_BETWEEN_STRINGS = r"\s*[,)\]};]|\s+[+%]|\.[A-Za-z_]\w*\("
#: Token formats recognised anywhere. Each starts with its literal prefix (fast to search); the
#: character before it is checked in code, so a prefix inside a longer word or a base64 blob is no
#: match.
_FORMATS = (
    r"(?:AKIA|ASIA)[A-Z0-9]{16}(?![A-Za-z0-9/+])",  # AWS access key id
    r"gh[pousr]_[A-Za-z0-9]{36,255}+",  # GitHub
    r"github_pat_[A-Za-z0-9_]{22,255}+",
    r"glpat-[A-Za-z0-9_-]{20,}+",  # GitLab
    r"xox[baprse]-[A-Za-z0-9-]{10,}+",  # Slack
    r"AIza[A-Za-z0-9_-]{35}(?![\w-])",  # Google API key
    r"ya29\.[A-Za-z0-9_-]{20,}+",  # Google OAuth access token
    r"GOCSPX-[A-Za-z0-9_-]{20,}+",  # Google OAuth client secret
    r"sk-(?=[\w-]*\d)[A-Za-z0-9_-]{20,}+",  # OpenAI, Anthropic (sk-proj-, sk-ant-): a real key has a digit
    r"sk_(?:live|test)_[A-Za-z0-9]{10,}+",  # Stripe secret and restricted keys
    r"rk_(?:live|test)_[A-Za-z0-9]{10,}+",
    r"whsec_[A-Za-z0-9]{20,}+",  # Stripe webhook secret
    r"hf_[A-Za-z0-9]{30,}+(?![\w-])",  # Hugging Face
    r"npm_[A-Za-z0-9]{36}(?![\w-])",  # npm
    r"pypi-AgE[A-Za-z0-9_-]{50,}+",  # PyPI
    r"eyJ[\w-]{5,}+\.eyJ[\w-]{5,}+\.[\w-]*+",  # JWT: base64url of '{"' header and payload
)


_Replace = Callable[[re.Match[str]], str | None]


@dataclass(frozen=True)
class _Pass:
    """A pattern, what becomes of each match (None leaves it), and the needles one of which must
    occur in the lower-cased text for the pattern to be worth running."""

    pattern: re.Pattern[str]
    replace: _Replace
    needles: tuple[str, ...]


@dataclass(frozen=True)
class _Patterns:
    prefilter: tuple[re.Pattern[str], ...]
    passes: tuple[_Pass, ...]
    ini_block: re.Pattern[str]
    ini_line: re.Pattern[str]
    placeholder: re.Pattern[str]
    scheme: re.Pattern[str]
    code: re.Pattern[str]
    between_strings: re.Pattern[str]


@functools.cache
def _patterns() -> _Patterns:
    # Compiled on first use, not at import: importing nbgov stays cheap.
    return _Patterns(
        prefilter=tuple(re.compile(needle) for needle in _PREFILTER),
        passes=_block_passes() + _name_passes() + _format_passes(),
        # A [section] line and the blank, comment and key = value lines that follow it.
        ini_block=re.compile(
            r"""(?mx)^[ \t]*\[[A-Za-z0-9_. :-]+\][ \t]*\r?$
            (?:\n(?:[ \t]*(?:[\#;].*)?|[ \t]*[\w.-]+[ \t]*[=:].*)$)*"""
        ),
        ini_line=re.compile(
            rf"""(?m)^[ \t]*(?P<name>{_NAME})[ \t]*=[ \t]*(?P<value>[^\s"'][^\r\n]*?)[ \t]*\r?$"""
        ),
        placeholder=re.compile(_PLACEHOLDER),
        scheme=re.compile(_SCHEME),
        code=re.compile(_CODE),
        between_strings=re.compile(_BETWEEN_STRINGS),
    )


def _block_passes() -> tuple[_Pass, ...]:
    # Whole PEM blocks first, so that later patterns never see half of a key. Lines end in newlines
    # or, inside a string literal (a service-account JSON), in \n escapes.
    begin, end = (rf"-----{word} (?:[A-Z0-9]+ )*PRIVATE KEY(?: BLOCK)?-----" for word in ("BEGIN", "END"))
    gap = r"(?:\s|\\[nr])*+"
    pem = re.compile(rf"{begin}{gap}(?P<value>.*?){gap}{end}", re.DOTALL)
    # Output cut short: a BEGIN line and whole lines of base64, with no END.
    line = r"[ \t]*(?:\r?\n|\\n)[ \t]*[A-Za-z0-9+/=]++(?=[ \t]*(?:\r?\n|\\[nr]|[\"']|$))"
    truncated = re.compile(rf"(?m){begin}{gap}(?P<value>[A-Za-z0-9+/=]{{16,}}+(?:{line})*+)")
    return (
        _Pass(pem, _redact_group("value"), ("private key",)),
        _Pass(truncated, _redact_group("value"), ("private key",)),
    )


def _name_passes() -> tuple[_Pass, ...]:
    quoted = re.compile(
        rf"""(?x)(?<![\w.-])
        (?:(?P<q>["'])(?P<qname>[A-Za-z_][\w .-]*+)(?P=q)\]?|(?P<name>{_NAME}))
        (?:[ \t]*:[ \t]*[A-Za-z_][\w.\[\], |]{{0,60}}?(?=[ \t]*=))?   # an annotation
        [ \t]*(?::=|=>|=|:)[ \t]*
        (?:{_QUOTED}|(?P<num>-?\d{{4,}}+)(?![\w.]))"""
    )
    env_call = re.compile(
        rf"""(?x)\b(?:setdefault|putenv|setenv|getenv|get)\([ \t]*(?P<nq>["'])(?P<name>[\w .-]+)(?P=nq)
        [ \t]*,[ \t]*{_QUOTED}"""
    )
    pair = re.compile(
        rf"""(?x)(?:\bauth[ \t]*=[ \t]*[(\[]|\b(?:HTTPBasicAuth|HTTPDigestAuth|HTTPProxyAuth|BasicAuth)\(
        |\.login\()[ \t]*[^,()\r\n]++,[ \t]*{_QUOTED}"""
    )
    # NAME=value with no spaces: shell, .env, %env, docker -e, URL queries, connection strings.
    assignment = re.compile(
        rf"""(?<![\w.-])(?P<name>{_NAME})=(?![=\s])(?P<value>[^\s"'`;&|,()\[\]]++)(?=$|[\s"'`;&|])"""
    )
    flag = re.compile(
        r"""(?x)(?<![^\s"'])--(?P<name>[A-Za-z][\w-]*+)(?:[ \t]+|=)
        (?:(?P<q>["'])(?P<qvalue>[^"'\r\n]+)(?P=q)|(?P<value>[^\s"'`;&|()$-][^\s"'`;&|()]*+))"""
    )
    env_magic = re.compile(
        r"""(?mx)^[ \t]*(?:%env|%set_env|ENV|setenv)[ \t]+(?P<name>[A-Za-z_]\w*+)[ \t]+
        (?P<value>[^\s"'=][^\r\n]*?)[ \t]*\r?$"""
    )
    # YAML, INI with colons, HTTP headers: at the start of a line, or of a string.
    mapping_line = re.compile(
        rf"""(?mx)(?:^[ \t]*(?:-[ \t]+)?|(?<=["']))(?P<name>{_NAME})[ \t]*:[ \t]+
        (?P<value>[^\s"'\#][^\r\n"']*?)(?=[ \t]+\#|[ \t]*(?:["']|\r?$))"""
    )
    # Quoted values first: a bare pattern never starts at a quote, so it cannot undo their work.
    return (
        _Pass(quoted, _redact_quoted_if_named, _NAME_NEEDLES),
        _Pass(env_call, _redact_quoted_if_named, ("get", "env(", "default(")),
        _Pass(pair, _redact_quoted, ("auth", "login(")),
        _Pass(assignment, _redact_bare_if_named, _NAME_NEEDLES),
        _Pass(flag, _redact_bare_if_named, ("--",)),
        _Pass(env_magic, _redact_bare_if_named, ("env",)),
        _Pass(mapping_line, _redact_bare_if_named, _NAME_NEEDLES),
    )


def _format_passes() -> tuple[_Pass, ...]:
    # The password of a URL is everything up to the last @ of the authority (it may hold an @).
    url = re.compile(
        r"""(?<![A-Za-z0-9+.-])[A-Za-z][A-Za-z0-9+.-]*+://[^\s:/?#@'"]*+:(?P<value>[^\s/?#'"]+)@"""
    )
    curl_user = re.compile(r"""(?<![^\s"'])(?:-u|--user)[ \t]+["']?[^\s:"']++:(?P<value>[^\s"']+)""")
    aws_secret = re.compile(
        r"""(?i)aws[_-]?secret(?:[_-]?access)?[_-]?key[\s"':=]{0,6}(?P<value>[A-Za-z0-9/+=]{40})"""
        r"""(?![A-Za-z0-9/+=])"""
    )
    slack_webhook = re.compile(r"hooks\.slack\.com/services/(?P<value>[A-Za-z0-9/]{20,}+)")
    # A real bearer token has a digit; "Bearer authentication" in prose does not.
    bearer = re.compile(r"(?i)\bbearer[ \t]+(?P<value>(?=[\w.~+/-]*\d)[\w.~+/-]{8,}+=*)")
    basic = re.compile(r"(?i)\bbasic[ \t]+(?P<value>[A-Za-z0-9+/]{4,}+={0,2})(?![\w+/=])")
    tokens = tuple(_Pass(re.compile(pattern, re.ASCII), _redact_standalone, ()) for pattern in _FORMATS)
    return (
        _Pass(url, _redact_group("value"), ("@",)),
        _Pass(curl_user, _redact_group("value"), ("-u",)),
        _Pass(aws_secret, _redact_group("value"), ("aws",)),
        _Pass(slack_webhook, _redact_group("value"), ("hooks.slack",)),
        *tokens,
        _Pass(bearer, _redact_group("value"), ("bearer",)),
        _Pass(basic, _redact_basic_credentials, ("basic",)),
    )



# --- text ---------------------------------------------------------------------------------------


class _Redaction:
    """The text being redacted and how many values have been replaced so far."""

    def __init__(self, text: str) -> None:
        self.text = text
        self.count = 0

    def apply(self, pattern: re.Pattern[str], replace: _Replace) -> None:
        """Substitute every match of *pattern* that *replace* rewrites."""

        def substitute(match: re.Match[str]) -> str:
            new = replace(match)
            if new is None or new == match[0]:
                return match[0]
            self.count += 1
            return new

        self.text = pattern.sub(substitute, self.text)

    def apply_within(self, outer: re.Pattern[str], pattern: re.Pattern[str], replace: _Replace) -> None:
        """Like :meth:`apply`, only inside the matches of *outer*."""

        def substitute_inside(match: re.Match[str]) -> str:
            inner = _Redaction(match[0])
            inner.apply(pattern, replace)
            self.count += inner.count
            return inner.text

        self.text = outer.sub(substitute_inside, self.text)


def redact_text(text: str) -> tuple[str, int]:
    """Return *text* with every secret replaced by :data:`REDACTED`, and how many were replaced.

    A secret name keeps its name and loses its literal value (``password = "[REDACTED]"``); a
    secret recognised by its format is replaced wherever it occurs; an auth scheme and the user
    and host of a URL are kept (``Bearer [REDACTED]``, ``postgresql://app:[REDACTED]@db/prod``).
    Applying it again changes nothing.

    Examples
    --------
    >>> redact_text('conn = connect(user="app", password="p@ss")')
    ('conn = connect(user="app", password="[REDACTED]")', 1)
    >>> redact_text("tokens = tokenizer(text, max_length=512)")
    ('tokens = tokenizer(text, max_length=512)', 0)
    """
    lowered = text.lower()
    patterns = _patterns()
    if not any(needle.search(lowered) for needle in patterns.prefilter):
        return text, 0
    run = _Redaction(text)
    for step in patterns.passes:
        if not step.needles or any(needle in lowered for needle in step.needles):
            run.apply(step.pattern, step.replace)
    # ``name = value`` without quotes is Python (a variable), except in an INI file.
    run.apply_within(patterns.ini_block, patterns.ini_line, _redact_bare_if_named)
    return run.text, run.count


def _redact_quoted_if_named(match: re.Match[str]) -> str | None:
    name = match.groupdict().get("qname") or match["name"]
    return _redact_quoted(match) if looks_secret_name(name) else None


def _redact_quoted(match: re.Match[str]) -> str | None:
    group = next(g for g in ("tvalue", "svalue", "num") if match.groupdict().get(g) is not None)
    value = match[group]
    if group == "svalue" and _patterns().between_strings.match(value):
        return None
    if group == "tvalue" and "\n" in value:
        return None  # a block of text (a config file, a template): its lines are examined one by one
    return _replace_group(match, group, _mask(value)) if _is_literal(value, bare=False) else None


def _redact_bare_if_named(match: re.Match[str]) -> str | None:
    if not looks_secret_name(match["name"]):
        return None
    group = "qvalue" if match.groupdict().get("qvalue") is not None else "value"
    value = match[group]
    return _replace_group(match, group, _mask(value)) if _is_literal(value, bare=group == "value") else None


def _redact_group(group: str) -> _Replace:
    def replace(match: re.Match[str]) -> str | None:
        return _replace_group(match, group, REDACTED) if _is_literal(match[group], bare=False) else None

    return replace


def _redact_standalone(match: re.Match[str]) -> str | None:
    # The token must start a word: "AKIA..." inside a longer word or a base64 blob is something else.
    start = match.start()
    before = match.string[start - 1] if start else " "
    return None if before.isascii() and (before.isalnum() or before in "_-+/") else REDACTED


def _redact_basic_credentials(match: re.Match[str]) -> str | None:
    # Basic credentials are base64 of "user:password"; checking that keeps "Basic usage" in prose.
    try:
        decoded = base64.b64decode(match["value"], validate=True)
    except (binascii.Error, ValueError):
        return None
    return _replace_group(match, "value", REDACTED) if b":" in decoded else None


def _is_literal(value: str, *, bare: bool) -> bool:
    """Whether *value* is literal text worth hiding: not empty, redacted, a placeholder or code."""
    patterns = _patterns()
    stripped = value.strip()
    if not stripped or REDACTED in stripped:
        return False
    scheme = patterns.scheme.match(stripped)
    rest = patterns.placeholder.sub("", stripped[scheme.end() :] if scheme else stripped)
    if not any(char.isalnum() for char in rest):
        return False
    return not (bare and patterns.code.fullmatch(stripped))


def _mask(value: str) -> str:
    scheme = _patterns().scheme.match(value.lstrip())
    return scheme[0] + REDACTED if scheme else REDACTED


def _replace_group(match: re.Match[str], group: str, new: str) -> str:
    start, end = match.span(group)
    offset = match.start()
    whole = match[0]
    return whole[: start - offset] + new + whole[end - offset :]
