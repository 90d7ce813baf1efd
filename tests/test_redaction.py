"""Secrets never reach the ledger: redaction of cell sources, logs and recorded parameters.

Every secret below is fabricated: right prefix, length and alphabet, random body.
"""

from __future__ import annotations

import ast
import copy
import doctest
import sys
from pathlib import Path
from types import ModuleType

import pytest
from hypothesis import assume, example, given, settings
from hypothesis import strategies as st

from nbgov import redaction
from nbgov.redaction import REDACTED, looks_secret_name, redact_text, redact_value

AKIA = "AKIAVQJXXVBOTHD0WTFL"
ASIA = "ASIAHBMUAPTT0ZN3X0PD"
AWS_SECRET = "HVJWDBt2hWdQZUm14QhoxhLPAbQcEFUV2fsjGHb6"
GHP = "ghp_qN9Nifp28uwCDydesokF5NSAllsNdV40J599"
GHS = "ghs_dTCZWZYvRSZeyx4Ag8SsaxTmknuj64AX6VM2"
GITHUB_PAT = "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Cl"
GLPAT = "glpat-deJg1Kza5KxxGWfvmaQt"
SLACK_BOT = "xoxb-418575545326-9529407561366-4q60sskDI1EDL0Y6wu1JOSNt"
SLACK_HOOK = "TAHEAKA90/BATZL8RTF/kbSh2Cde2wioVMEuUYMjPeFX"
GOOGLE_KEY = "AIzaSyLnZ5R-j_8U_m7aSz7NRSOtv75y4SXvE9r"
GOOGLE_OAUTH = "ya29.bAtf6e9cpCGybY9lMR4pAwBp3GVy1PixOqoRGrB5Vpg5C6QsyHZytfqY6K1Q"
GOOGLE_CLIENT_SECRET = "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"
OPENAI = "sk-rUd7z14cKuuBNf0gmUBUhWRQdIAUDFbxtBetshRQNG3dhi4w"
OPENAI_PROJECT = "sk-proj-AuRVpQ09oiVeZWJ9QyucS19AvMp2gUAeSsUfFgUlT3BlbkFJ8oPK-HJN45P_ED75cNRqsKz5b70CO8W7RQHy2Yp-"
ANTHROPIC = "sk-ant-api03-ptzsJqLOJqu3g9DYpQaxEN-cNljiRkV71kDRuIr2jhTxs-OHKDpnJh_rgiOaPq_N9RtlnnudSkpmKog0Qwp_vaQcT7xl2AA"
STRIPE_LIVE = "sk_live_KP4b2loPDbwAMbj8KVuxgaaJ"
STRIPE_TEST = "sk_test_l7LRiiQbLJmWZTsUryrgsVJN"
STRIPE_RESTRICTED = "rk_live_8OLJtqCdpa0WI2Kk8xxo3GI0"
STRIPE_WEBHOOK = "whsec_uoV6vGTFN4g3AfCK9eVGViflxutnrYec"
HF = "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"
NPM = "npm_lLTCPPAwVv82BHZO0vk3ZdjYYCfrpx8IH5vb"
PYPI = "pypi-AgEIcHlwaS5vcmcxtDyKUOtfZUTqr8aFvnKbnHFbDfj3u-ypO09RnKw1zW9_ohP46PbmT1TOkzf"
JWT = (
    "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiJ1LTQ4MjEiLCJuYW1lIjoiQWRhIEV4YW1wbGUiLCJpYXQiOjE3MTYyMzkwMjJ9"
    ".R1wKbPXTXx8TTx4XUMGmTtfc6y-xI25MTL3xzfMg5lJ"
)
BEARER = "Yj.loHI3Yhc1OxT_8QY4_3BMDogiSTRI"
BASIC = "c3ZjLXJlcG9ydGluZzpUcjB1YjRkb3ImMw=="  # base64("svc-reporting:Tr0ub4dor&3")
PEM_BODY = (
    "MIIEvgIBADANBgkqhkiG9w0BAQEFAASCBKgwggSkAgEAAoIBAQC7LbQ2EHfBQVNo\n"
    "FtH84jL5e9A6rZ7pLz9LNvgRRgL31Rngvqx2F/WYut51mojGNKhXCXlPm2mOnWkP\n"
    "gC/PDh1QcBLuCqmV9vyXqhGcZ4etCqQefZcPygKJAlRMcMO25uBB2SsX3VED3N4R\n"
    "qbdZujM05+DX0gcxGAhA6ZJnYKGZ6B1nnb6kTQqUZo/hOXQkkn8A5MWnLnf1ERds"
)
PEM_LINES = PEM_BODY.split("\n")

#: (realistic surrounding code, the secrets that must be gone from the redacted text)
SECRETS = [
    pytest.param('DB_HOST = "warehouse.internal"\npassword = "hunter2!"\n', ["hunter2!"], id="python-assignment"),
    pytest.param("API_KEY='abc123def456'\nclient = Client(API_KEY)", ["abc123def456"], id="single-quoted-constant"),
    pytest.param(
        'conn = psycopg2.connect(host="db", user="analyst", password="p@ss-W0rd-2024", dbname="sales")',
        ["p@ss-W0rd-2024"], id="keyword-argument",
    ),
    pytest.param(
        'config = {"client_id": "reporting-app", "client_secret": "s3cr3t-9f8e7d6c5b4a"}',
        ["s3cr3t-9f8e7d6c5b4a"], id="dict-entry",
    ),
    pytest.param("!export DB_PASSWORD=Hunter2ProdDb && python etl.py", ["Hunter2ProdDb"], id="shell-export"),
    pytest.param(f"github:\n  owner: acme\n  token: {GHP}\n", [GHP], id="yaml-token"),
    pytest.param(
        'app = Flask(__name__)\napp.secret_key = b"\\x8f\\x1c\\xa2_9Kq!zR\\x00\\x7f"', ["\\x8f\\x1c\\xa2_9Kq!zR\\x00\\x7f"],
        id="bytes-secret-key",
    ),
    pytest.param('suffix = "2024"\npassword = f"Winter!{suffix}Sales"', ["Winter!"], id="f-string"),
    pytest.param(
        f"%%writefile ~/.aws/credentials\n[default]\naws_access_key_id = {AKIA}\naws_secret_access_key = {AWS_SECRET}\n",
        [AKIA, AWS_SECRET], id="aws-credentials-file",
    ),
    pytest.param(
        f's3 = boto3.client(\n    "s3",\n    aws_access_key_id="{AKIA}",\n    aws_secret_access_key="{AWS_SECRET}",\n)',
        [AKIA, AWS_SECRET], id="boto3-client",
    ),
    pytest.param(
        f"INFO botocore.credentials Found credentials in environment variables: {ASIA} (expires 2024-06-11T18:00:00Z)",
        [ASIA], id="aws-temporary-key-in-log",
    ),
    pytest.param(
        f"!git clone https://x-access-token:{GITHUB_PAT}@github.com/acme/models.git", [GITHUB_PAT], id="github-pat-in-url",
    ),
    pytest.param(f'gh = Github(auth=Auth.Token("{GHS}"))\nrepo = gh.get_repo("acme/models")', [GHS], id="github-app-token"),
    pytest.param(
        f'gl = gitlab.Gitlab("https://gitlab.example.com", private_token="{GLPAT}")', [GLPAT], id="gitlab-token",
    ),
    pytest.param(
        f'client = WebClient(token="{SLACK_BOT}")\n'
        f'requests.post("https://hooks.slack.com/services/{SLACK_HOOK}", json={{"text": "done"}})',
        [SLACK_BOT, SLACK_HOOK], id="slack",
    ),
    pytest.param(
        f'url = f"https://maps.googleapis.com/maps/api/geocode/json?address={{addr}}&key={GOOGLE_KEY}"',
        [GOOGLE_KEY], id="google-api-key-in-query",
    ),
    pytest.param(
        f"print(creds.token)\n{GOOGLE_OAUTH}\nclient_secret: {GOOGLE_CLIENT_SECRET}", [GOOGLE_OAUTH, GOOGLE_CLIENT_SECRET],
        id="google-oauth",
    ),
    pytest.param(
        f'from openai import OpenAI\nclient = OpenAI(api_key="{OPENAI_PROJECT}")\nresp = client.chat.completions.create(model="gpt-4o", max_tokens=512, messages=m)',
        [OPENAI_PROJECT], id="openai-project-key",
    ),
    pytest.param(f"# old key, revoked: {OPENAI}\n", [OPENAI], id="openai-key-in-comment"),
    pytest.param(f'os.environ["ANTHROPIC_API_KEY"] = "{ANTHROPIC}"', [ANTHROPIC], id="anthropic-environ"),
    pytest.param(
        f'stripe.api_key = "{STRIPE_LIVE}"\n# tests: {STRIPE_TEST}, reporting: {STRIPE_RESTRICTED}',
        [STRIPE_LIVE, STRIPE_TEST, STRIPE_RESTRICTED], id="stripe",
    ),
    pytest.param(f"STRIPE_WEBHOOK_SECRET={STRIPE_WEBHOOK}\n", [STRIPE_WEBHOOK], id="dotenv-line"),
    pytest.param(
        f'from huggingface_hub import login\nlogin(token="{HF}")\n!huggingface-cli login --token {HF}', [HF],
        id="hugging-face",
    ),
    pytest.param(f"%%writefile .npmrc\n//registry.npmjs.org/:_authToken={NPM}\n", [NPM], id="npmrc"),
    pytest.param(
        f"%%writefile ~/.pypirc\n[pypi]\nusername = __token__\npassword = {PYPI}\n", [PYPI], id="pypirc-ini",
    ),
    pytest.param(
        f"Out[7]: {{'access_token': '{JWT}', 'token_type': 'bearer', 'expires_in': 3600}}", [JWT],
        id="jwt-in-output",
    ),
    pytest.param(
        f'!curl -s -H "Authorization: Bearer {BEARER}" https://api.example.com/v1/models', [BEARER],
        id="bearer-header-in-curl",
    ),
    pytest.param(
        f'headers = {{"Accept": "application/json", "Authorization": "Basic {BASIC}"}}', [BASIC], id="basic-auth-header",
    ),
    pytest.param(
        f'PRIVATE_KEY = """-----BEGIN RSA PRIVATE KEY-----\n{PEM_BODY}\n-----END RSA PRIVATE KEY-----\n"""\nsigner = load(PRIVATE_KEY)',
        PEM_LINES, id="pem-in-triple-quotes",
    ),
    pytest.param(
        '{"type": "service_account", "project_id": "acme-ml", "private_key": "-----BEGIN PRIVATE KEY-----\\n'
        + "\\n".join(PEM_LINES) + '\\n-----END PRIVATE KEY-----\\n", "client_email": "ml@acme-ml.iam.gserviceaccount.com"}',
        PEM_LINES, id="pem-in-service-account-json",
    ),
    pytest.param(
        f"!cat ~/.ssh/id_ed25519\n-----BEGIN OPENSSH PRIVATE KEY-----\n{PEM_BODY}\n-----END OPENSSH PRIVATE KEY-----",
        PEM_LINES, id="openssh-key-in-output",
    ),
    pytest.param(
        f"ValueError: could not parse key: -----BEGIN EC PRIVATE KEY-----\n{PEM_LINES[0]}\n{PEM_LINES[1]}",
        PEM_LINES[:2], id="truncated-pem-in-error",
    ),
    pytest.param(
        'engine = create_engine("postgresql+psycopg2://analyst:pa55word-Q3@warehouse.internal:5432/sales")',
        ["pa55word-Q3"], id="postgres-url",
    ),
    pytest.param(
        'client = MongoClient("mongodb+srv://ml-reader:Zx9!kL2@pQ@cluster0.abcde.mongodb.net/?retryWrites=true")',
        ["Zx9!kL2@pQ"], id="mongodb-url-with-at-in-password",
    ),
    pytest.param('cache = redis.from_url("redis://:r3dis-Secret-77@cache:6379/0")', ["r3dis-Secret-77"], id="redis-url"),
    pytest.param(
        "%env WANDB_API_KEY 3f2a9c1d8e7b6a5f4c3d2e1f0a9b8c7d6e5f4a3b", ["3f2a9c1d8e7b6a5f4c3d2e1f0a9b8c7d6e5f4a3b"],
        id="env-magic",
    ),
    pytest.param('r = requests.get(url, auth=("svc-reporting", "Tr0ub4dor&3"), timeout=10)', ["Tr0ub4dor&3"], id="auth-tuple"),
    pytest.param(
        'server = smtplib.SMTP_SSL("smtp.gmail.com", 465)\nserver.login("reports@example.com", "abcd efgh ijkl mnop")',
        ["abcd efgh ijkl mnop"], id="smtp-login",
    ),
    pytest.param(
        "!docker run -d -e POSTGRES_PASSWORD=dockerPw-8812 -p 5432:5432 postgres:16", ["dockerPw-8812"], id="docker-env",
    ),
    pytest.param(
        'conn = psycopg2.connect("host=db dbname=sales user=analyst password=libpqPw-771")', ["libpqPw-771"],
        id="libpq-dsn",
    ),
    pytest.param(
        'conn_str = "DefaultEndpointsProtocol=https;AccountName=acmeml;AccountKey=q8Vd9+Kx2Lw7Zr3Tn5Yp1Mh6Jb4Gc0Fs8Ae2Ud7Wi9Oq==;EndpointSuffix=core.windows.net"',
        ["q8Vd9+Kx2Lw7Zr3Tn5Yp1Mh6Jb4Gc0Fs8Ae2Ud7Wi9Oq=="], id="azure-connection-string",
    ),
    pytest.param(
        'cnxn = pyodbc.connect("DRIVER={ODBC Driver 18};SERVER=sql01;UID=etl;PWD=odbcPw!42;")', ["odbcPw!42"], id="odbc",
    ),
    pytest.param(
        "!papermill train.ipynb out.ipynb --password=cliPw-2024 -p epochs 3", ["cliPw-2024"], id="cli-flag",
    ),
    pytest.param('password = os.environ.get("DB_PASSWORD", "fallback-Pw-99")', ["fallback-Pw-99"], id="environ-default"),
    pytest.param("const cfg = {dbPassword: 'camelCasePw!7', dbUser: 'app'};", ["camelCasePw!7"], id="camel-case-name"),
    pytest.param(
        "[I 2024-06-11 09:14:02 ServerApp] http://127.0.0.1:8888/lab?token=4f1e2d3c4b5a69788796a5b4c3d2e1f0a9b8c7d6e5f4a3b2",
        ["4f1e2d3c4b5a69788796a5b4c3d2e1f0a9b8c7d6e5f4a3b2"], id="jupyter-server-token",
    ),
    pytest.param(
        "users:\n  - name: admin\n    password: Adm1n-P4ss\n  - name: viewer\n    password: 'V1ew3r-P4ss'\n",
        ["Adm1n-P4ss", "V1ew3r-P4ss"], id="yaml-list",
    ),
    pytest.param(
        "curl -u deploy:curlPw-5150 https://artifacts.example.com/upload", ["curlPw-5150"], id="curl-user",
    ),
    pytest.param("DATABASE_PASSWORD=123456\n", ["123456"], id="numeric-password"),
]

#: Ordinary notebook text that looks a little like a secret and must come out unchanged.
INNOCENT = [
    pytest.param(
        'tokenizer = AutoTokenizer.from_pretrained("bert-base-uncased")\n'
        "tokens = tokenizer(texts, truncation=True, max_length=512, return_tensors=\"pt\")\n"
        "n_tokens = tokens[\"input_ids\"].shape[1]",
        id="tokenizer",
    ),
    pytest.param(
        'client = OpenAI(api_key=os.environ["OPENAI_API_KEY"])\n'
        'resp = client.chat.completions.create(model="gpt-4o-mini", max_tokens=512, temperature=0.2, messages=msgs)',
        id="max-tokens-and-key-from-environment",
    ),
    pytest.param(
        'password = os.environ["DB_PASSWORD"]\ntoken = get_token()\napi_key = None\nsecret = ""\n'
        "access_token = response.json()['access_token']",
        id="secrets-from-elsewhere",
    ),
    pytest.param(
        'password = getpass.getpass("Password: ")\nprint("password:", "*" * len(password), "(hidden)")',
        id="getpass-prompt",
    ),
    pytest.param('key = "species"\ncounts = df[key].value_counts()\ndf.sort_values(by=key, key=lambda s: s.str.lower())', id="dataframe-key"),
    pytest.param(
        "sha256: 9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08\n"
        "md5: 5d41402abc4b2a76b9719d911017c592",
        id="hex-digests",
    ),
    pytest.param(
        'run_id = "3f2b8c1e-9a4d-4e7b-8c2a-1d5e6f7a8b9c"\nmlflow.start_run(run_id=run_id)', id="uuid",
    ),
    pytest.param(
        "commit d04d5014995756e61d6b91cda411dfd72f1a3447\nAuthor: Ada Example <ada@example.com>\nDate:   Tue Jun 11 09:14:02 2024",
        id="git-log",
    ),
    # Base64 blobs (image outputs) are left alone: every format needs its prefix at the start of a
    # word, and a JWT two "eyJ" segments joined by dots, which an image never has.
    pytest.param(
        '<img src="data:image/png;base64,iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNkYPhfDwAChwGA60e6kgAAAABJRU5ErkJggg==">',
        id="base64-image",
    ),
    pytest.param(
        'tokenizer.pad_token = "<pad>"\ntokenizer.eos_token = "</s>"\nmask_token = "[MASK]"\nspecial_token = "<|im_start|>"',
        id="nlp-special-tokens",
    ),
    pytest.param(
        'df.set_index("id").join(other, on="customer_id")\nprimary_key = "customer_id"\ns3_key = "datasets/train.parquet"\n'
        "rng_key = jax.random.PRNGKey(0)\nkeyword = \"neural networks\"",
        id="other-keys",
    ),
    pytest.param(
        'password_policy_url = "https://intranet.example.com/policies/passwords"\nsecretary = "Jane Doe"\n'
        "password_min_length = 12\nmax_token = 128",
        id="names-about-secrets",
    ),
    pytest.param(
        '"""Bearer authentication: send the token in the Authorization header."""\n'
        'headers = {"Authorization": f"Bearer {token}"}\nBasic statistics are computed below.',
        id="auth-words-in-prose-and-templates",
    ),
    pytest.param(
        "@dataclass\nclass DbConfig:\n    user: str\n    password: str\n    token: Optional[str] = None\n    api_key: SecretStr = Field(repr=False)",
        id="annotations",
    ),
    pytest.param(
        'engine = create_engine("postgresql://analytics@db.internal:5432/warehouse")\nurl = "https://example.com:8443/api/v1"',
        id="urls-without-passwords",
    ),
    pytest.param("!pip install scikit-learn==1.5.0 task-specific-adapters", id="pip-install"),
    pytest.param(
        "Out[3]: {'token_type': 'bearer', 'expires_in': 3600, 'scope': 'read write'}", id="oauth-response-without-token",
    ),
    pytest.param('the = df[df["token"] == "the"]\nvocab = {token: i for i, token in enumerate(tokens)}', id="nlp-token-column"),
    pytest.param('path = hf_hub_download(repo_id="bert-base-uncased", filename="config.json")', id="hf-hub"),
    pytest.param(
        'password = "${DB_PASSWORD}"\napi_key = "<your-api-key>"\nDSN = "postgresql://{user}:{password}@{host}/db"',
        id="templates-and-placeholders",
    ),
    pytest.param("export PATH=$HOME/.local/bin:$PATH\nexport TOKEN=$GITHUB_TOKEN", id="shell-references"),
    pytest.param(
        "-----BEGIN PUBLIC KEY-----\nMFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAE9aZ0\n-----END PUBLIC KEY-----\n"
        "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl ada@laptop",
        id="public-keys",
    ),
]


# --- redact_text ----------------------------------------------------------------------------------


@pytest.mark.parametrize(("source", "secrets"), SECRETS)
def test_secret_is_replaced(source: str, secrets: list[str]) -> None:
    redacted, count = redact_text(source)
    for secret in secrets:
        assert secret not in redacted, redacted
    assert REDACTED in redacted
    assert count >= 1


@pytest.mark.parametrize("source", INNOCENT)
def test_innocent_text_is_unchanged(source: str) -> None:
    assert redact_text(source) == (source, 0)


@pytest.mark.parametrize(("source", "secrets"), SECRETS)
def test_redaction_is_idempotent(source: str, secrets: list[str]) -> None:
    once, _ = redact_text(source)
    assert redact_text(once) == (once, 0)


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        ('password = "hunter2!"', 'password = "[REDACTED]"'),
        ('connect(user="u", password="p@ss")', 'connect(user="u", password="[REDACTED]")'),
        ("export DB_PASSWORD=hunter2", "export DB_PASSWORD=[REDACTED]"),
        ("db:\n  password: hunter2  # prod\n", "db:\n  password: [REDACTED]  # prod\n"),
        ('headers = {"Authorization": "Bearer abc123def456"}', 'headers = {"Authorization": "Bearer [REDACTED]"}'),
        ('url = "postgresql://app:pa55word@db:5432/prod"', 'url = "postgresql://app:[REDACTED]@db:5432/prod"'),
        (f"key={GOOGLE_KEY}&q=1", "key=[REDACTED]&q=1"),
        ("-----BEGIN PRIVATE KEY-----\nMIIEvQIBADANBgkqhkiG9w0BAQEFAASC\n-----END PRIVATE KEY-----",
         "-----BEGIN PRIVATE KEY-----\n[REDACTED]\n-----END PRIVATE KEY-----"),
        ("bad key: -----BEGIN EC PRIVATE KEY-----\nMIIEvQIBADANBgkqhkiG9w0BAQEFAASC\nabcd==\nSee the docs.",
         "bad key: -----BEGIN EC PRIVATE KEY-----\n[REDACTED]\nSee the docs."),
    ],
)
def test_only_the_value_is_replaced(source: str, expected: str) -> None:
    assert redact_text(source)[0] == expected


def test_count_is_the_number_of_values_replaced() -> None:
    source = (
        'user = "analyst"\npassword = "hunter2!"\n'
        f'token = "{GHP}"\nurl = "redis://:pw-77@cache:6379"\n# {OPENAI}\n'
    )
    redacted, count = redact_text(source)
    assert count == 4
    assert redacted.count(REDACTED) == 4
    assert 'user = "analyst"' in redacted


def test_text_without_secrets_is_returned_as_is() -> None:
    source = "import numpy as np\nx = np.arange(10)\n"
    redacted, count = redact_text(source)
    assert redacted is source
    assert count == 0


# --- looks_secret_name ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "name",
    [
        "password", "passwd", "pwd", "PWD", "secret", "client_secret", "token", "access_token", "auth_token",
        "api_key", "apikey", "api-key", "API_KEY", "apiKey", "APIKey", "X-Api-Key", "private_key", "secret_key",
        "aws_secret_access_key", "AWS_SECRET_ACCESS_KEY", "credentials", "session_key", "dbPassword",
        "DB_PASSWORD", "db_pass", "self.password", "spark.hadoop.fs.s3a.secret.key", "HF_TOKEN", "hub_token",
        "refresh_token", "openai_key", "passphrase", "AccountKey", "Authorization", "api_key_b64",
        "password_confirmation", "password2", "dbpassword", "accesstoken", "clientSecret",
    ],
)
def test_secret_names(name: str) -> None:
    assert looks_secret_name(name)


@pytest.mark.parametrize(
    "name",
    [
        "tokenizer", "tokens", "n_tokens", "max_tokens", "max_new_tokens", "max_token", "keyword", "key", "keys",
        "primary_key", "sort_key", "s3_key", "rng_key", "public_key", "secretary", "password_policy_url",
        "password_min_length", "token_type", "token_count", "pad_token", "eos_token", "mask_token", "session_id",
        "is_secret", "first_pass", "bypass", "author", "aws_access_key_id", "", "_", "42",
    ],
)
def test_ordinary_names(name: str) -> None:
    assert not looks_secret_name(name)


# --- redact_value ---------------------------------------------------------------------------------


def _pipeline_params() -> dict[str, object]:
    """What ``Pipeline.get_params()`` returns for a text pipeline with a database-backed loader."""
    return {
        "memory": None,
        "verbose": False,
        "steps": [("loader", "SqlLoader"), ("tfidf", "TfidfVectorizer"), ("clf", "LogisticRegression")],
        "loader__query": "SELECT text, label FROM tickets",
        "loader__connection": {"host": "warehouse.internal", "port": 5432, "user": "analyst", "password": "pa55word-Q3"},
        "loader__dsn": "postgresql://analyst:pa55word-Q3@warehouse.internal:5432/sales",
        "loader__credentials": {"user": "svc", "key": "k-123"},
        "loader__headers": {"Authorization": f"Bearer {BEARER}"},
        "tfidf__max_features": 5000,
        "tfidf__ngram_range": (1, 2),
        "tfidf__token_pattern": r"(?u)\b\w\w+\b",
        "clf__C": 1.0,
        "clf__class_weight": "balanced",
        "clf__notes": f"tuned with the {OPENAI} key",
        "callbacks": [{"name": "wandb", "api_key": "3f2a9c1d8e7b6a5f4c3d2e1f0a9b8c7d6e5f4a3b"}],
        "hub_token": None,
        "use_auth_token": True,
        "secret": "",
        "api_key": 123456,
    }


def test_redact_value_on_pipeline_params() -> None:
    params = _pipeline_params()
    original = copy.deepcopy(params)
    redacted = redact_value(params)
    assert params == original, "the input was modified"
    assert redacted["loader__connection"] == {
        "host": "warehouse.internal", "port": 5432, "user": "analyst", "password": REDACTED,
    }
    assert redacted["loader__dsn"] == f"postgresql://analyst:{REDACTED}@warehouse.internal:5432/sales"
    assert redacted["loader__credentials"] == REDACTED
    assert redacted["loader__headers"] == {"Authorization": REDACTED}
    assert redacted["clf__notes"] == f"tuned with the {REDACTED} key"
    assert redacted["callbacks"] == [{"name": "wandb", "api_key": REDACTED}]
    assert redacted["api_key"] == REDACTED
    # Nothing innocent changes, not even its type.
    for name in ("memory", "verbose", "steps", "loader__query", "tfidf__max_features", "tfidf__ngram_range",
                 "tfidf__token_pattern", "clf__C", "clf__class_weight", "hub_token", "use_auth_token", "secret"):
        assert redacted[name] == original[name], name
        assert type(redacted[name]) is type(original[name]), name
    assert "pa55word-Q3" not in repr(redacted)


def test_redact_value_with_a_secret_name() -> None:
    assert redact_value("hunter2", name="password") == REDACTED
    assert redact_value({"user": "u", "pw": "x"}, name="credentials") == REDACTED
    assert redact_value(None, name="password") is None
    assert redact_value("", name="password") == ""
    assert redact_value(True, name="token") is True
    assert redact_value("species", name="key") == "species"


def test_redact_value_scalars_pass_through() -> None:
    for value in (None, True, 0, 1.5, -3, b"\x00raw"):
        assert redact_value(value) is value
    obj = object()
    assert redact_value(obj) is obj


def test_redact_value_redacts_keys_holding_secrets() -> None:
    assert redact_value({GHP: "repo scope"}) == {REDACTED: "repo scope"}


def test_redact_value_is_idempotent() -> None:
    once = redact_value(_pipeline_params())
    assert redact_value(once) == once


# --- properties -----------------------------------------------------------------------------------

#: Secrets recognised by their format alone, wherever they stand.
FORMAT_SECRETS = [
    AKIA, ASIA, GHP, GHS, GITHUB_PAT, GLPAT, SLACK_BOT, GOOGLE_KEY, GOOGLE_OAUTH, GOOGLE_CLIENT_SECRET, OPENAI,
    OPENAI_PROJECT, ANTHROPIC, STRIPE_LIVE, STRIPE_TEST, STRIPE_RESTRICTED, STRIPE_WEBHOOK, HF, NPM, PYPI, JWT,
]
#: Lines whose literal value is a secret because of the name it is bound to.
NAMED_SECRETS = [
    ('password = "hunter2!"', "hunter2!"),
    ("export DB_PASSWORD=Hunter2ProdDb", "Hunter2ProdDb"),
    ("  client_secret: s3cr3t-9f8e7d6c", "s3cr3t-9f8e7d6c"),
    ('conn = connect(user="u", password="p@ss-W0rd")', "p@ss-W0rd"),
    ('url = "postgresql://app:pa55word-Q3@db/prod"', "pa55word-Q3"),
    (f"Authorization: Bearer {BEARER}", BEARER),
    (f"Authorization: Basic {BASIC}", BASIC),
]
ALL_SECRETS = FORMAT_SECRETS + [secret for _, secret in NAMED_SECRETS] + PEM_LINES
#: No example database: these properties are cheap to rerun and should leave no files behind.
hermetic = settings(deadline=None, database=None)
#: Characters that end a token, so a secret between them stands on its own.
separators = st.sampled_from([" ", "\n", "\t", "(", ")", ", ", "'", '"', "; ", "= ", ": ", "[", "]"])


@settings(hermetic, max_examples=400)
@given(st.text(max_size=60), separators, st.sampled_from(FORMAT_SECRETS), separators, st.text(max_size=60))
def test_format_secrets_are_found_in_any_surroundings(
    before: str, left: str, secret: str, right: str, after: str
) -> None:
    source = before + left + secret + right + after
    redacted, count = redact_text(source)
    assert secret not in redacted
    assert count >= 1
    for known in ALL_SECRETS:
        assert redacted.count(known) <= source.count(known)


@settings(hermetic, max_examples=300)
@given(st.lists(st.text(max_size=40), max_size=3), st.sampled_from(NAMED_SECRETS), st.lists(st.text(max_size=40), max_size=3))
def test_named_secrets_are_found_between_any_lines(
    before: list[str], line: tuple[str, str], after: list[str]
) -> None:
    source = "\n".join([*before, line[0], *after])
    redacted, _ = redact_text(source)
    assert line[1] not in redacted
    for known in ALL_SECRETS:
        assert redacted.count(known) <= source.count(known)


_snippets = [str(p.values[0]) for p in SECRETS] + [str(p.values[0]) for p in INNOCENT]


@settings(hermetic, max_examples=300)
@given(st.lists(st.one_of(st.text(max_size=30), st.sampled_from(_snippets)), max_size=6))
@example(["password = ", '"[REDACTED]x"'])
def test_redaction_is_idempotent_on_any_text(parts: list[str]) -> None:
    once, _ = redact_text("".join(parts))
    assert redact_text(once) == (once, 0)


@settings(hermetic, max_examples=300)
@given(st.text(alphabet=st.characters(codec="ascii"), max_size=200))
def test_count_is_the_number_of_markers_inserted(noise: str) -> None:
    assume(REDACTED not in noise)
    redacted, count = redact_text(noise)
    assert redacted.count(REDACTED) == count


# --- the module -----------------------------------------------------------------------------------


def test_marker() -> None:
    assert REDACTED == "[REDACTED]"


MODULES = (redaction, redaction.names, redaction.text, redaction.values)


def test_package_imports_only_the_standard_library() -> None:
    paths = sorted(Path(redaction.__file__).parent.glob("*.py"))
    assert len(paths) == len(MODULES)
    for path in paths:
        tree = ast.parse(path.read_text())
        imported = {alias.name for node in ast.walk(tree) if isinstance(node, ast.Import) for alias in node.names}
        imported |= {node.module for node in ast.walk(tree) if isinstance(node, ast.ImportFrom) and node.module}
        outside = {name.split(".")[0] for name in imported if not name.startswith("nbgov.redaction.")}
        assert outside <= set(sys.stdlib_module_names) | {"__future__"}, (path.name, outside)


@pytest.mark.parametrize("module", MODULES, ids=lambda m: m.__name__)
def test_docstring_examples(module: ModuleType) -> None:
    result = doctest.testmod(module)
    assert result.failed == 0
    if module is not redaction:  # the package only re-exports: its examples run in its modules
        assert result.attempted > 0
