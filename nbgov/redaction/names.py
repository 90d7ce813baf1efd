"""The name rule: whether a variable, key, field, option or environment name names a secret
(:func:`looks_secret_name`), judged by the words it is made of.
"""

from __future__ import annotations

import functools
import re

__all__ = ["looks_secret_name"]

# --- the name rule --------------------------------------------------------------------------------
# A name is split into words (separators and camelCase) and judged by its last word, the noun it
# names: ``password_policy_url`` is a URL, ``db_password`` a password.

#: Last words that name a secret on their own.
_SECRET_WORDS = frozenset(
    "password passwords passwd pwd passphrase passcode secret secrets token credential credentials creds "
    "auth authorization".split()
)
#: Run-together spellings (``apikey``, ``dbpassword``, ``accesstoken``): a last word ending so.
_SECRET_SUFFIXES = tuple(
    "password passwords passwd secret secrets token apikey apikeys accesskey secretkey privatekey sessionkey "
    "authkey masterkey signingkey encryptionkey".split()
)
#: ``key`` is a secret only after one of these (``api_key``, ``aws_secret_access_key``), never
#: alone or as ``primary_key``, ``sort_key``, ``s3_key``, ``rng_key``. Vendors count: ``openai_key``.
_KEY_QUALIFIERS = frozenset(
    "api secret private access session auth signing sign encryption encrypt decryption master client app "
    "application account shared subscription hmac license licence service admin root ssh gpg pgp rsa jwt "
    "webhook bot consumer developer fernet crypto pass openai anthropic cohere mistral groq wandb hf "
    "huggingface stripe twilio sendgrid mailgun google gcp azure aws pinecone serpapi replicate comet "
    "neptune".split()
)
#: ``token`` names a piece of text in NLP code (``pad_token = "<pad>"``), not a credential.
_TEXT_TOKEN_QUALIFIERS = frozenset(
    "pad padding bos eos unk mask sep cls special start end stop first last next prev previous current cur "
    "input output new vocab word sub subword sentence image audio video placeholder target generated "
    "predicted eot eom sot split delimiter chat role system assistant tool think thinking lang language "
    "control decoder encoder".split()
)
#: ``pass`` is a password only after one of these (``db_pass``), never ``first_pass``, ``n_pass``.
_PASS_QUALIFIERS = frozenset(
    "db database user admin root login mail smtp email ftp ssh sql mysql pg postgres redis account app api "
    "proxy ldap wifi master".split()
)
#: Counting and flag words make a name about secrets rather than a secret: ``max_token``,
#: ``is_secret``, ``has_password``.
_NEGATING = frozenset("max min num n nb count total len length is has".split())
#: Trailing words that only say how the secret is spelt: ``api_key_b64``, ``password_confirm``.
_SPELLING_WORDS = frozenset(
    "value val b64 base64 hex raw plain plaintext enc encoded confirm confirmation again repeat "
    "verify".split()
)


@functools.cache
def _words() -> re.Pattern[str]:
    # Compiled on first use, not at import: importing nbgov stays cheap.
    return re.compile(r"(?:[A-Z]+(?![a-z])|[A-Z]?[a-z]+)[0-9]*")


def looks_secret_name(name: str) -> bool:
    """Whether a variable, key, field, option or environment name names a secret.

    The name is split into words at ``_ - .``, spaces and camelCase humps, lower-cased, and judged
    by its last word (after dropping spelling words such as ``b64``, ``hex``, ``confirm``, and
    trailing digits: ``password2``):

    - ``password``, ``passwd``, ``pwd``, ``passphrase``, ``passcode``, ``secret``, ``token``,
      ``credential(s)``, ``creds``, ``auth``, ``authorization`` (and plurals ``passwords``,
      ``secrets``) are secrets, as is a run-together word ending in ``password``, ``secret``,
      ``token``, ``apikey``, ``secretkey``, ... (``dbpassword``, ``accesstoken``);
    - ``key`` only after a qualifier such as ``api``, ``secret``, ``private``, ``access``,
      ``session``, ``signing``, ``account`` or a vendor (``openai_key``);
    - ``pass`` only after ``db``, ``user``, ``admin``, ``smtp``, ...;
    - ``token`` not after an NLP qualifier (``pad_token``, ``eos_token``, ``mask_token``);
    - nothing right after a counting or flag word (``max_token``, ``is_secret``).

    Not secrets: ``tokenizer``, ``tokens``, ``n_tokens``, ``max_tokens``, ``keyword``, ``key``,
    ``primary_key``, ``s3_key``, ``secretary``, ``password_policy_url``, ``password_min_length``,
    ``token_type``, ``session_id``.

    Examples
    --------
    >>> looks_secret_name("dbPassword"), looks_secret_name("X-Api-Key"), looks_secret_name("tokenizer")
    (True, True, False)
    """
    words = [word.lower() for word in _words().findall(name)]
    while len(words) > 1 and words[-1] in _SPELLING_WORDS:
        words.pop()
    # Numbered names are the same names: password2, key1.
    words = [word.rstrip("0123456789") for word in words[-2:]]
    if not words:
        return False
    return _is_secret_noun(words[-1], words[-2] if len(words) > 1 else None)


def _is_secret_noun(last: str, before: str | None) -> bool:
    if before in _NEGATING:
        return False
    if last in ("key", "keys"):
        return before in _KEY_QUALIFIERS
    if last == "pass":
        return before in _PASS_QUALIFIERS
    if last == "token":
        return before not in _TEXT_TOKEN_QUALIFIERS
    return last in _SECRET_WORDS or last.endswith(_SECRET_SUFFIXES)
