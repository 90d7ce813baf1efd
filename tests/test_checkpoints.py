"""Signed checkpoints (C2SP signed-note / tlog-checkpoint), their chain, `verify --against`,
and self-contained proofs (`nbgov prove` / `nbgov verify-proof`)."""

from __future__ import annotations

import base64
import hashlib
import json
import shutil
from pathlib import Path

import duckdb
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from nbgov import events
from nbgov.errors import NoteError
from nbgov.ledger.facade import Ledger
from nbgov.ledger.integrity.checkpoints import (
    check_against,
    ledger_origin,
    note_digest,
    stored_checkpoints,
)
from nbgov.ledger.integrity.merkle import Tree
from nbgov.ledger.integrity.notes import (
    VerifierKey,
    checkpoint_text,
    open_note,
    parse_checkpoint,
    sign_note,
)
from nbgov.settings import resolve_settings
from support.helpers import as_user, invoke_cli, rewrite_history, run_cli, sample_ledger

# The example of golang.org/x/mod/sumdb/note (the reference implementation of signed notes):
# a signer key, its verifier key, a text and the note it signs.
GO_SIGNER = "PRIVATE+KEY+PeterNeumann+c74f20a3+AYEKFALVFGyNhPJEMzD1QIDr+Y7hfZx09iUvxdXHKDFz"
GO_VERIFIER = "PeterNeumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW"
GO_TEXT = ("If you think cryptography is the answer to your problem,\n"
           "then you don't know what your problem is.\n")
GO_NOTE = GO_TEXT + ("\n\u2014 PeterNeumann x08go/ZJkuBS9UG/SffcvIAQxVBtiFupLLr8pAcElZInNIuGUg"
                     "YN1FFYC2pZSNXgKvqfqdngotpRZb6KE6RyyBwJnAM=\n")


def _go_private() -> Ed25519PrivateKey:
    seed = base64.b64decode(GO_SIGNER.split("+", 4)[4])  # PRIVATE+KEY+name+id+key
    assert seed[:1] == b"\x01"
    return Ed25519PrivateKey.from_private_bytes(seed[1:])


# -- the note format -----------------------------------------------------------------------------


def test_signing_reproduces_the_reference_note_byte_for_byte() -> None:
    assert sign_note(GO_TEXT, "PeterNeumann", _go_private()) == GO_NOTE
    key = VerifierKey.parse(GO_VERIFIER)
    assert key.text() == GO_VERIFIER and key.key_id.hex() == "c74f20a3"
    text, signer = open_note(GO_NOTE, [key])
    assert text == GO_TEXT and signer == key


def test_a_key_whose_base64_contains_a_plus_parses() -> None:
    for _ in range(200):
        public = Ed25519PrivateKey.generate().public_key().public_bytes_raw()
        key = VerifierKey("nbgov/x", public)
        if "+" in key.text().split("+", 2)[2]:
            assert VerifierKey.parse(key.text()) == key
            return
    pytest.fail("no key with '+' in its base64 among 200")


@pytest.mark.parametrize("mangle, message", [
    (lambda n: n.replace("\n\n", "\n"), "no blank line"),
    (lambda n: n.replace("\u2014 ", "-- "), "malformed signature line"),
    (lambda n: n.replace("x08go/", "x08go!"), "not base64"),
    (lambda n: n.replace("x08go/ZJkuBS9UG/SffcvIAQxVBtiFupLLr8pAcElZInNIuGUgYN1FFYC2pZSNXgKvqfqdngotpRZb6KE6RyyBwJnAM=",
                         "x08go/ZJ"), "wrong length"),
    (lambda n: n.replace("cryptography", "cryptograpHy"), "does not verify"),
    (lambda n: n.replace("answer", "ans\twer"), "control characters"),
    (lambda n: n.replace("PeterNeumann x08", "PeterNeumann2 x08"), "not signed by a trusted key"),
])
def test_malformed_or_altered_notes_are_refused(mangle, message: str) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(NoteError, match=message):
        open_note(mangle(GO_NOTE), [VerifierKey.parse(GO_VERIFIER)])


def test_unknown_signers_are_ignored_and_another_key_is_not_trusted() -> None:
    other = Ed25519PrivateKey.generate()
    cosigned = sign_note(GO_TEXT, "Witness", other)
    note = GO_NOTE + cosigned.split("\n\n", 1)[1]  # a second signature line by another key
    assert open_note(note, [VerifierKey.parse(GO_VERIFIER)])[0] == GO_TEXT
    with pytest.raises(NoteError, match="not signed by a trusted key"):
        open_note(GO_NOTE, [VerifierKey("PeterNeumann", other.public_key().public_bytes_raw())])


@pytest.mark.parametrize("text", [
    "origin\n012\nAAAA\n", "origin\n12\n", "origin\n-1\n" + base64.b64encode(bytes(32)).decode() + "\n",
    "origin\n12\n" + base64.b64encode(bytes(31)).decode() + "\n", "origin\n\n12\n",
])
def test_malformed_checkpoint_texts_are_refused(text: str) -> None:
    with pytest.raises(NoteError):
        parse_checkpoint(text)


def test_checkpoint_text_round_trips_and_ignores_extension_lines() -> None:
    root = hashlib.sha256(b"x").digest()
    text = checkpoint_text("nbgov/abc", 42, root)
    assert text == f"nbgov/abc\n42\n{base64.b64encode(root).decode()}\n"
    cp = parse_checkpoint(text + "some extension\n")
    assert (cp.origin, cp.size, cp.root) == ("nbgov/abc", 42, root)


# -- checkpoints in the ledger ---------------------------------------------------------------------


def _checkpoints(home: Path) -> list:  # type: ignore[type-arg]
    with Ledger(home).reader() as con:
        return stored_checkpoints(con)


def test_a_checkpoint_certifies_the_tree_of_every_event_before_it(home: Path) -> None:
    sample_ledger(home)
    ledger = Ledger(home)
    note = ledger.checkpoint()
    assert note is not None
    [cp] = _checkpoints(home)
    with ledger.reader() as con:
        ledger_id = con.execute("SELECT value FROM ledger_meta WHERE key = 'ledger_id'").fetchone()[0]  # type: ignore[index]
        leaves = [bytes(r[0]) for r in con.execute(
            "SELECT leaf_hash FROM event_log WHERE seq <= $s ORDER BY seq", {"s": cp.size}).fetchall()]
        keys = con.execute("SELECT actor, payload->>'public_key' FROM events WHERE type = 'key_registered'").fetchall()
    # An independent tree over the recorded leaves gives the signed root.
    assert cp.size == 10 and cp.root == base64.b64encode(Tree(leaves).root()).decode()
    assert cp.origin == ledger_origin(ledger_id) and cp.previous is None and cp.reason == "manual"
    # Signed by the acting user's key, registered just before the checkpoint event.
    [(actor, public)] = keys
    assert actor == ledger.actor.id
    text, _ = open_note(note, [VerifierKey(cp.origin, bytes.fromhex(public))])
    assert parse_checkpoint(text).size == cp.size
    # Asked again, a checkpoint certifies everything now, the first checkpoint's events included;
    # an automatic one would wait for something new (see the interval test).
    ledger.append(events.MetricsLogged(metrics={"auc": 0.9}, model="m", version=1))
    second = ledger.checkpoint()
    first, latest = _checkpoints(home)
    assert second == latest.note and latest.previous == note_digest(first.note)
    assert latest.size == first.seq + 1  # the first checkpoint's events and the metrics
    third = ledger.checkpoint()  # only the second checkpoint's event is uncertified
    assert third != second and _checkpoints(home)[-1].size == latest.seq
    assert ledger.checkpoint() != third  # each request certifies the one before it too
    assert run_cli("--home", str(home), "verify").returncode == 0


def test_a_checkpoint_is_cut_at_the_end_of_a_notebook_session(make_shell, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    home = tmp_path / "ledger"
    shell = make_shell(home=home, raise_errors=True)  # nbgov loaded (asserted)
    assert shell.run_cell("x = 1 + 1").success
    assert shell.run_cell("%unload_ext nbgov").success
    [cp] = _checkpoints(home)
    with Ledger(home).reader() as con:
        ended = con.execute("SELECT max(seq) FROM event_log WHERE type = 'session_ended'").fetchone()[0]  # type: ignore[index]
    assert cp.reason == "session_end" and cp.size >= ended


def test_an_interval_checkpoint_is_cut_only_when_due_and_only_after_new_events(home: Path) -> None:
    sample_ledger(home)
    hourly = Ledger(settings=resolve_settings({"home": home, "checkpoint_interval": 3600}))
    hourly.append(events.MetricsLogged(metrics={"auc": 0.9}, model="m", version=1))
    hourly.ingest()
    assert _checkpoints(home) == []  # the ledger is minutes old: not due
    eager = Ledger(settings=resolve_settings({"home": home, "checkpoint_interval": 0.001}))
    eager.append(events.MetricsLogged(metrics={"auc": 0.8}, model="m", version=1))
    eager.ingest()
    [cp] = _checkpoints(home)
    assert cp.reason == "interval"
    again = Ledger(settings=resolve_settings({"home": home, "checkpoint_interval": 0.001}))
    again.ingest()  # nothing recorded since: no checkpoint
    assert len(_checkpoints(home)) == 1
    never = Ledger(settings=resolve_settings({"home": home, "checkpoint_interval": 0}))
    never.append(events.MetricsLogged(metrics={"auc": 0.7}, model="m", version=1))
    never.ingest()
    assert len(_checkpoints(home)) == 1


@pytest.mark.slow
def test_concurrent_checkpoints_form_one_chain(home: Path) -> None:
    """Checkpoints cut by several processes at once each record the one before them."""
    import subprocess
    import sys

    sample_ledger(home)
    code = ("import sys; from nbgov.ledger import Ledger; from nbgov import events\n"
            "l = Ledger(sys.argv[1])\n"
            "for i in range(8):\n"
            "    l.append(events.MetricsLogged(metrics={'i': i}, model='m', version=1)); l.checkpoint()\n")
    from support.helpers import clean_env

    procs = [subprocess.Popen([sys.executable, "-c", code, str(home)], env=clean_env(NBGOV_ACTOR=f"w{i}"))
             for i in range(3)]
    assert all(p.wait(timeout=120) == 0 for p in procs)
    found = _checkpoints(home)
    assert len(found) >= 3
    for before, after in zip(found, found[1:]):
        assert after.previous == note_digest(before.note)
    assert {cp.actor for cp in found} == {"w0", "w1", "w2"}
    assert run_cli("--home", str(home), "verify").returncode == 0


def test_a_checkpoint_event_edited_in_place_is_reported(home: Path) -> None:
    sample_ledger(home)
    ledger = Ledger(home)
    ledger.checkpoint()
    ledger.append(events.MetricsLogged(metrics={"auc": 0.9}, model="m", version=1))
    ledger.checkpoint()
    second = _checkpoints(home)[1]
    ledger.close()
    # Forge the second checkpoint's "previous" and re-hash everything consistently.
    forged = b"0" * 64
    rewrite_history(home, lambda seq, body: body.replace(second.previous.encode(), forged)  # type: ignore[union-attr]
                    if seq == second.seq else body)
    result = run_cli("--home", str(home), "verify")
    assert result.returncode == 1
    assert f"first bad seq {second.seq}: checkpoint invalid" in result.stderr
    assert "previous checkpoint" in result.stderr


def test_a_missing_signing_key_passphrase_skips_interval_checkpoints_with_a_warning(
        home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    sample_ledger(home)
    monkeypatch.setenv("NBGOV_KEY_PASSPHRASE", "s3cret-passphrase")
    ledger = Ledger(home)
    ledger.checkpoint()  # creates the key encrypted with the passphrase
    monkeypatch.delenv("NBGOV_KEY_PASSPHRASE")
    eager = Ledger(settings=resolve_settings({"home": home, "checkpoint_interval": 0.001}))
    eager.append(events.MetricsLogged(metrics={"auc": 0.9}, model="m", version=1))
    with pytest.warns(Warning, match="no signed checkpoint cut"):
        eager.ingest()
    assert len(_checkpoints(home)) == 1
    assert eager.query("SELECT count(*) AS n FROM events WHERE type = 'metrics_logged'")["n"][0] == 2


# -- verify --against: an exported checkpoint ----------------------------------------------------


def _export(home: Path, note: Path) -> Path:
    assert run_cli("--home", str(home), "checkpoint", "export", str(note)).returncode == 0
    keys = run_cli("--home", str(home), "checkpoint", "keys").stdout
    note.with_suffix(".keys").write_text(keys)
    return note


def _verify_against(home: Path, note: Path, *extra: str):  # type: ignore[no-untyped-def]
    return run_cli("--home", str(home), "verify", "--against", str(note), "--key",
                   str(note.with_suffix(".keys")), *extra)


def test_a_ledger_that_grew_verifies_against_an_older_checkpoint(home: Path, tmp_path: Path) -> None:
    sample_ledger(home)
    note = _export(home, tmp_path / "cp.note")
    ledger = Ledger(home)
    for i in range(37):
        ledger.append(events.MetricsLogged(metrics={"i": i}, model="m", version=1))
    ledger.ingest()
    result = _verify_against(home, note)
    assert result.returncode == 0, result.stderr
    assert "extends the checkpoint of 10 events" in result.stdout


def test_a_fork_signed_by_the_same_key_fails_against_the_earlier_checkpoint(home: Path, tmp_path: Path) -> None:
    sample_ledger(home)
    ledger = Ledger(home)
    ledger.append(events.MetricsLogged(metrics={"auc": 0.91}, model="m", version=1))
    ledger.ingest()
    ledger.close()
    fork = tmp_path / "fork"
    shutil.copytree(home, fork)  # the same history so far, and the same user and key
    # The original goes on and its owner exports a checkpoint...
    original = Ledger(home)
    original.append(events.MetricsLogged(metrics={"auc": 0.92}, model="m", version=1))
    note = _export(home, tmp_path / "original.note")
    # ...the fork records something else instead, and signs its own checkpoints with the same key.
    forked = Ledger(fork)
    forked.append(events.MetricsLogged(metrics={"auc": 0.99}, model="m", version=1))
    for i in range(5):
        forked.append(events.MetricsLogged(metrics={"i": i}, model="m", version=1))
    forked.checkpoint()
    assert run_cli("--home", str(fork), "verify").returncode == 0  # consistent on its own
    result = _verify_against(fork, note)
    assert result.returncode == 1 and "history rewritten" in result.stderr, result.stderr
    assert _verify_against(home, note).returncode == 0


@pytest.mark.parametrize("edit", ["bit", "delete", "reorder", "truncate"])
def test_any_edit_of_the_history_fails_against_an_exported_checkpoint(home: Path, tmp_path: Path, edit: str) -> None:
    """The forger rewrites every hash, the tree and the recorded checkpoints (signing them with
    the same key, which they hold): only the exported checkpoint still tells."""
    from nbgov.ledger.envelope import format_time
    from nbgov.ledger.integrity.chain import GENESIS, chain_hash, leaf_hash
    from nbgov.ledger.integrity.tree_store import backfill

    sample_ledger(home)
    ledger = Ledger(home)
    for i in range(20):
        ledger.append(events.MetricsLogged(metrics={"i": i}, model="m", version=1))
    note = _export(home, tmp_path / "cp.note")
    certified = parse_checkpoint(note.read_text().split("\n\n")[0] + "\n").size
    ledger.close()
    con = duckdb.connect(str(home / "ledger.duckdb"))
    rows = [(int(s), bytes(b), int(m)) for s, b, m in con.execute(
        f"SELECT seq, body, epoch_us(ingested_at) FROM event_log WHERE seq <= {certified - 2} ORDER BY seq"
    ).fetchall()]  # drop the checkpoint's own events and the last real event: rebuilt below
    if edit == "bit":
        seq, body, micros = rows[12]
        rows[12] = (seq, body.replace(b'"i":3', b'"i":2'), micros)
    elif edit == "delete":
        del rows[12]
    elif edit == "reorder":
        rows[12], rows[13] = rows[13], rows[12]
    else:
        del rows[15:]
    con.execute("DELETE FROM event_log")
    con.execute("DELETE FROM ingest_batches")
    con.execute("DELETE FROM merkle_nodes")
    chain, new_seq = GENESIS, 0
    for _, body, micros in rows:
        new_seq += 1
        text = format_time(micros * 1000)
        leaf = leaf_hash(body, text, new_seq)
        chain = chain_hash(chain, leaf)
        con.execute(
            "INSERT INTO event_log SELECT $seq, make_timestamptz($us), b->>'$.id', b->>'$.type', "
            "(b->>'$.v')::INTEGER, strptime(b->>'$.time', '%Y-%m-%dT%H:%M:%S.%fZ')::TIMESTAMPTZ, "
            "b->>'$.actor.id', b->>'$.actor.source', $body, $leaf, $chain "
            "FROM (SELECT decode($body)::JSON AS b)",
            {"seq": new_seq, "us": micros, "body": body, "leaf": leaf, "chain": chain})
    con.execute("INSERT INTO ingest_batches SELECT 1, now(), 1, $n, $n, $c, 'forger', 1",
                {"n": new_seq, "c": chain})
    backfill(con)
    con.close()
    forged = Ledger(home)
    forged.append(events.MetricsLogged(metrics={"forged": 1}, model="m", version=1))
    forged.checkpoint()  # re-signed with the same key
    assert run_cli("--home", str(home), "verify").returncode == 0, "the forgery is self-consistent"
    result = _verify_against(home, note)
    assert result.returncode == 1, result.stdout
    assert "history rewritten" in result.stderr or "events were removed" in result.stderr


def test_a_checkpoint_signed_by_another_key_is_refused(home: Path, tmp_path: Path) -> None:
    sample_ledger(home)
    note = _export(home, tmp_path / "cp.note")
    text = note.read_text().split("\n\n")[0] + "\n"
    origin = text.split("\n")[0]
    stranger = Ed25519PrivateKey.generate()
    forged = tmp_path / "forged.note"
    forged.write_text(sign_note(text, origin, stranger))
    result = run_cli("--home", str(home), "verify", "--against", str(forged))
    assert result.returncode == 1 and "not signed by a trusted key" in result.stderr
    # Nor with the owner's key pinned.
    result = run_cli("--home", str(home), "verify", "--against", str(forged), "--key", str(note.with_suffix(".keys")))
    assert result.returncode == 1 and "not signed by a trusted key" in result.stderr
    # Another user registered in the ledger signs a checkpoint: trusted by default (their key is
    # registered), refused once the auditor pins the owner's key.
    mallory = as_user(home, "mallory")
    mallory.append(events.MetricsLogged(metrics={"auc": 0.5}, model="m", version=1))
    theirs = mallory.checkpoint()
    assert theirs is not None and "mallory" not in note.with_suffix(".keys").read_text()
    ledger_id = origin.split("/", 1)[1]
    owner = VerifierKey.parse(note.with_suffix(".keys").read_text().split()[0])
    with Ledger(home).reader() as con:
        assert check_against(con, theirs, ledger_id=ledger_id).signer != owner
        with pytest.raises(NoteError, match="not signed by a trusted key"):
            check_against(con, theirs, ledger_id=ledger_id, trusted=[owner])
        assert check_against(con, note.read_text(), ledger_id=ledger_id, trusted=[owner]).signer == owner


def test_bad_input_to_verify_against(home: Path, tmp_path: Path) -> None:
    sample_ledger(home)
    garbage = tmp_path / "garbage.note"
    garbage.write_bytes(b"\xff\xfe not text")
    result = invoke_cli("--home", str(home), "verify", "--against", str(garbage))
    assert result.returncode == 1 and "not a checkpoint note" in result.stderr
    result = invoke_cli("--home", str(home), "verify", "--key", "not-a-key")
    assert result.returncode == 1 and "not a verifier key" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


# -- proofs ----------------------------------------------------------------------------------------


def test_a_proof_file_verifies_offline_and_fails_when_altered(home: Path, tmp_path: Path) -> None:
    sample_ledger(home)
    keys = tmp_path / "keys.txt"
    out = tmp_path / "proof.json"
    result = run_cli("--home", str(home), "prove", "6", "--out", str(out))
    assert result.returncode == 0, result.stderr
    # the auditor's copy of the keys, with a comment line of their own (skipped, as the bundle's
    # standalone verifier skips it)
    keys.write_text("# keys the auditor trusts\n" + run_cli("--home", str(home), "checkpoint", "keys").stdout)
    shutil.rmtree(home)  # no ledger needed to check it
    result = invoke_cli("verify-proof", str(out), "--key", str(keys))
    assert result.returncode == 0, result.stderr
    assert "seq 6 (model_fitted" in result.stdout
    proof = json.loads(out.read_text())

    def fails(changed: dict, why: str) -> None:  # type: ignore[type-arg]
        bad = tmp_path / "bad.json"
        bad.write_text(json.dumps(changed))
        result = invoke_cli("verify-proof", str(bad), "--key", str(keys))
        assert result.returncode == 1, why
        assert len(result.stderr.strip().splitlines()) == 1, result.stderr

    body = json.loads(proof["event"]["body"])
    body["payload"]["params"] = {"C": 100.0}
    fails({**proof, "event": {**proof["event"], "body": json.dumps(body)}}, "edited event")
    fails({**proof, "event": {**proof["event"], "seq": 7}}, "moved event")
    path = list(proof["inclusion_proof"])
    flipped = bytearray(base64.b64decode(path[0]))
    flipped[0] ^= 1
    fails({**proof, "inclusion_proof": [base64.b64encode(bytes(flipped)).decode(), *path[1:]]}, "path")
    fails({**proof, "inclusion_proof": path[:-1]}, "short path")
    other = Ed25519PrivateKey.generate()
    text = proof["checkpoint"].split("\n\n")[0] + "\n"
    fails({**proof, "checkpoint": sign_note(text, text.split("\n")[0], other)}, "another key")
    fails({"format": "nbgov-proof/1"}, "missing fields")


def test_proving_a_seq_beyond_the_ledger_is_a_one_line_error(home: Path, tmp_path: Path) -> None:
    sample_ledger(home)
    result = invoke_cli("--home", str(home), "prove", "999", "--out", str(tmp_path / "p.json"))
    assert result.returncode == 1 and "no event at seq 999" in result.stderr
    assert not (tmp_path / "p.json").exists()
