"""The envelope v2 part of `crypto/vectors.json` (written by `python -m crypto.gen_vectors`).

Kinds (schema in crypto/README.md): `v2_binding` (the AAD and box-nonce
derivations), `envelope2_seal`, `envelope2_open` (including every binding
failure: wrong thread, wrong seq, swapped role, swapped team key, each with the
header left honest → `binding` and with the header rewritten to match →
`authentication`), `conversation_citizen` and `conversation_team` (the
readers' whole rule, pinning included, over forged rows).
"""

import copy
import json
from collections.abc import Callable

from crypto.derive import public_key
from crypto.encoding import b64, kid, unb64
from crypto.envelope import seal_envelope
from crypto.envelope2 import CITIZEN, CONSULTANT, NOTE, Binding, read_as_citizen, read_as_team, seal_v2
from crypto.errors import CryptoError

KINDS = ["v2_binding", "envelope2_seal", "envelope2_open", "conversation_citizen", "conversation_team"]
OUTCOMES = [CryptoError.BINDING]


def build(fixed: Callable[..., bytes]) -> list[dict]:
    z_sk, z2_sk = fixed("v2 citizen sk"), fixed("v2 other citizen sk")
    t_sk, t2_sk, a_sk = fixed("v2 team sk"), fixed("v2 next team sk"), fixed("v2 attacker sk")
    z, z2, t, t2, a = (public_key(s) for s in (z_sk, z2_sk, t_sk, t2_sk, a_sk))
    counter = iter(range(1000))

    def sealed(text: str, binding: Binding, sender_sk: bytes) -> tuple[dict, dict]:
        """The envelope, and the seal vector's input (fixed K and nonce per envelope)."""
        n = next(counter)
        k, nonce = fixed(f"v2 content key {n}"), fixed(f"v2 nonce {n}", 24)
        body = json.dumps({"text": text}, ensure_ascii=False, separators=(",", ":"))
        env = seal_v2({"text": text}, binding, sender_sk, content_key=k, nonce=nonce)
        given = {"plaintext": body, "role": binding.role, "seq": binding.seq, "citizen_pk": b64(binding.citizen_pk),
                 "team_pk": b64(binding.team_pk), "sender_sk": b64(sender_sk), "content_key": b64(k), "nonce": b64(nonce)}
        return env, given

    out: list[dict] = []
    for role, seq, recipient in ((CITIZEN, 1, t), (CONSULTANT, 2, z), (NOTE, 0, t)):
        b = Binding(role, seq, z, t)
        nonce = fixed("v2 binding nonce", 24)
        out.append({"id": f"v2-binding-{role}", "kind": "v2_binding", "comment": "content AAD and a box nonce",
                    "input": {"role": role, "seq": seq, "citizen_pk": b64(z), "team_pk": b64(t), "nonce": b64(nonce),
                              "recipient_pk": b64(recipient)},
                    "expected": {"outcome": "ok", "aad": b.aad().decode("ascii"), "box_nonce": b64(b.box_nonce(nonce, recipient))}})

    first, first_in = sealed("Hej, jeg har brug for hjælp.", Binding(CITIZEN, 1, z, t), z_sk)
    reply, reply_in = sealed("Vi er her. Hvad er der sket?", Binding(CONSULTANT, 2, z, t), t_sk)
    note, note_in = sealed("intern note: ring tilbage", Binding(NOTE, 0, z, t), t_sk)
    for name, env, given in (("citizen", first, first_in), ("consultant", reply, reply_in), ("note", note, note_in)):
        out.append({"id": f"envelope2-seal-{name}", "kind": "envelope2_seal", "comment": f"a {name} envelope, byte-exact",
                    "input": given, "expected": {"outcome": "ok", "envelope": env}})
    out.append({"id": "envelope2-seal-wrong-sender", "kind": "envelope2_seal",
                "comment": "a citizen message cannot be made with the team key",
                "input": dict(first_in, sender_sk=b64(t_sk)), "expected": {"outcome": CryptoError.BINDING}})

    def opening(vid: str, comment: str, env: dict, reader_sk: bytes, b: Binding, outcome: str, text: str | None = None) -> dict:
        expected: dict = {"outcome": outcome}
        if outcome == "ok":
            expected["plaintext"] = {"text": text}
        return {"id": vid, "kind": "envelope2_open", "comment": comment,
                "input": {"envelope": env, "reader_sk": b64(reader_sk), "role": b.role, "seq": b.seq,
                          "citizen_pk": b64(b.citizen_pk), "team_pk": b64(b.team_pk)},
                "expected": expected}

    def rewritten(env: dict, **header: object) -> dict:
        """The same boxes and ciphertext under a header edited to match the reader's expectation."""
        out_env = copy.deepcopy(env)
        out_env.update(header)
        out_env["keys"][0]["kid"] = kid(unb64(out_env["team"]))
        if len(out_env["keys"]) > 1:
            out_env["keys"][1]["kid"] = out_env["thread"]
        return out_env

    bind_reply = Binding(CONSULTANT, 2, z, t)
    flipped = dict(reply, ct=_flip(reply["ct"], 200))
    out += [
        opening("envelope2-open-citizen-reads-reply", "the citizen verifies the consultant's reply with the pinned T.pk",
                reply, z_sk, bind_reply, "ok", "Vi er her. Hvad er der sket?"),
        opening("envelope2-open-team-reads-reply", "the team verifies its own reply (T to T)", reply, t_sk, bind_reply,
                "ok", "Vi er her. Hvad er der sket?"),
        opening("envelope2-open-team-reads-citizen", "the team verifies the citizen's message (Z to T)", first, t_sk,
                Binding(CITIZEN, 1, z, t), "ok", "Hej, jeg har brug for hjælp."),
        opening("envelope2-open-citizen-reads-own", "the citizen verifies its own message (Z to Z)", first, z_sk,
                Binding(CITIZEN, 1, z, t), "ok", "Hej, jeg har brug for hjælp."),
        opening("envelope2-open-note", "the team verifies a note", note, t_sk, Binding(NOTE, 0, z, t), "ok",
                "intern note: ring tilbage"),
        opening("envelope2-open-stranger", "a key that is not a recipient", reply, a_sk, bind_reply, CryptoError.WRONG_KEY),
        opening("envelope2-open-tampered", "one ciphertext byte flipped", flipped, z_sk, bind_reply, CryptoError.AUTHENTICATION),
        opening("envelope2-open-v1", "a version 1 envelope is not a version 2 one",
                seal_envelope({"text": "x"}, [t, z], content_key=fixed("v2 v1 k"), nonce=fixed("v2 v1 n", 24),
                              ephemeral_sks=[fixed("v2 v1 e1"), fixed("v2 v1 e2")]),
                z_sk, bind_reply, CryptoError.PARSE),
        # Binding failures, header honest: the reader sees at once that it belongs elsewhere.
        opening("envelope2-wrong-thread", "a reply of another thread (another Z)", reply, t_sk,
                Binding(CONSULTANT, 2, z2, t), CryptoError.BINDING),
        opening("envelope2-wrong-seq", "a reply moved to seq 3", reply, z_sk, Binding(CONSULTANT, 3, z, t), CryptoError.BINDING),
        opening("envelope2-swapped-role", "a consultant reply relabelled citizen", reply, t_sk,
                Binding(CITIZEN, 2, z, t), CryptoError.BINDING),
        opening("envelope2-swapped-team-key", "read as pinned to another team key", reply, z_sk,
                Binding(CONSULTANT, 2, z, t2), CryptoError.BINDING),
        # The same, with the header rewritten to match: the boxes and the AAD catch it.
        opening("envelope2-wrong-thread-rewritten", "copied into another thread, header rewritten",
                rewritten(reply, thread=kid(z2)), t_sk, Binding(CONSULTANT, 2, z2, t), CryptoError.AUTHENTICATION),
        opening("envelope2-wrong-seq-rewritten", "seq rewritten from 2 to 3", rewritten(reply, seq=3), z_sk,
                Binding(CONSULTANT, 3, z, t), CryptoError.AUTHENTICATION),
        opening("envelope2-swapped-role-rewritten", "a citizen message relabelled consultant, header rewritten",
                rewritten(first, **{"from": CONSULTANT}), z_sk, Binding(CONSULTANT, 1, z, t), CryptoError.AUTHENTICATION),
        opening("envelope2-swapped-role-rewritten-team", "a consultant reply relabelled citizen, header rewritten",
                rewritten(reply, **{"from": CITIZEN}), t_sk, Binding(CITIZEN, 2, z, t), CryptoError.AUTHENTICATION),
        opening("envelope2-swapped-team-key-rewritten", "made with T, header claims T2", rewritten(reply, team=b64(t2)),
                z_sk, Binding(CONSULTANT, 2, z, t2), CryptoError.AUTHENTICATION),
    ]
    forged, _ = sealed("Mød mig ved stationen kl. 22", Binding(CONSULTANT, 3, z, a), a_sk)
    forged = rewritten(forged, team=b64(t))
    out.append(opening("envelope2-public-keys-only", "made with public keys only (an attacker's own key), claiming T",
                       forged, z_sk, Binding(CONSULTANT, 3, z, t), CryptoError.AUTHENTICATION))
    out += _conversations(fixed, sealed, rewritten, keys=(z_sk, z2_sk, t_sk, t2_sk, a_sk))
    return out


def _conversations(fixed, sealed, rewritten, keys) -> list[dict]:  # type: ignore[no-untyped-def]
    z_sk, _z2_sk, t_sk, t2_sk, a_sk = keys
    z, z2, t, t2, a = (public_key(s) for s in keys)
    rows: list[tuple[int, str, dict]] = []
    rows.append((1, CITIZEN, sealed("Jeg tør ikke tage hjem.", Binding(CITIZEN, 1, z, t), z_sk)[0]))
    rows.append((2, CONSULTANT, sealed("Er du i sikkerhed lige nu?", Binding(CONSULTANT, 2, z, t), t_sk)[0]))
    rows.append((3, CITIZEN, sealed("Ja, hos en veninde.", Binding(CITIZEN, 3, z, t), z_sk)[0]))
    rows.append((4, CONSULTANT, sealed("Godt. Vi ringer i morgen.", Binding(CONSULTANT, 4, z, t), t_sk)[0]))
    rows.append((5, CONSULTANT, sealed("Skriv når du vil.", Binding(CONSULTANT, 5, z, t), t_sk)[0]))
    other = sealed("Svar i en anden tråd", Binding(CONSULTANT, 6, z2, t), t_sk)[0]
    by_retired = sealed("Lavet med en nøgle tråden ikke er bundet til", Binding(CONSULTANT, 9, z, t2), t2_sk)[0]
    forged_public = seal_envelope({"text": "Mød mig ved stationen"}, [t, z], content_key=fixed("v2 forged k"),
                                  nonce=fixed("v2 forged n", 24), ephemeral_sks=[fixed("v2 forged e1"), fixed("v2 forged e2")])
    forged_v2 = rewritten(sealed("Mød mig kl. 22", Binding(CONSULTANT, 10, z, a), a_sk)[0], team=b64(t))
    attacked = [
        rows[0], rows[1], rows[2],
        (4, CONSULTANT, rows[4][2]),  # seq 4 and 5 swapped
        (5, CONSULTANT, rows[3][2]),
        (6, CONSULTANT, rewritten(other, thread=kid(z), seq=6)),  # copied from another thread
        (7, CONSULTANT, rewritten(rows[2][2], **{"from": CONSULTANT, "seq": 7})),  # a citizen message relabelled
        (8, CONSULTANT, forged_public),  # version 1, public keys only
        (9, CONSULTANT, by_retired),  # a key the thread is not pinned to (a removed consultant's)
        (10, CONSULTANT, forged_v2),  # version 2, public keys only
    ]
    legacy = [
        (1, CITIZEN, seal_envelope({"text": "gammel tråd"}, [t, z], content_key=fixed("v2 legacy k1"),
                                   nonce=fixed("v2 legacy n1", 24), ephemeral_sks=[fixed("v2 l e1"), fixed("v2 l e2")])),
        (2, CONSULTANT, seal_envelope({"text": "gammelt svar"}, [z, t], content_key=fixed("v2 legacy k2"),
                                      nonce=fixed("v2 legacy n2", 24), ephemeral_sks=[fixed("v2 l e3"), fixed("v2 l e4")])),
    ]
    notes = [sealed("note ok", Binding(NOTE, 0, z, t), t_sk)[0],
             sealed("note fra en anden tråd", Binding(NOTE, 0, z2, t), t_sk)[0],
             sealed("note med fremmed nøgle", Binding(NOTE, 0, z, t2), t2_sk)[0]]

    def as_rows(items: list[tuple[int, str, dict]]) -> list[dict]:
        return [{"seq": s, "from": f, "envelope": e} for s, f, e in items]

    def shown(reads: list) -> list[dict]:  # type: ignore[type-arg]
        return [{"seq": r.seq, "from": r.sender, "verified": r.verified, "text": r.text} for r in reads]

    out = []
    for name, items, comment in (
        ("honest", rows, "an untouched conversation: everything verifies, pinned to T"),
        ("attacked", attacked, "seqs swapped, a reply from another thread, a relabelled citizen message, "
                               "forgeries with public keys only, a key the thread is not pinned to"),
        ("legacy", legacy, "a thread from before version 2: readable, never verified"),
    ):
        out.append({"id": f"conversation-citizen-{name}", "kind": "conversation_citizen", "comment": comment,
                    "input": {"messages": as_rows(items), "z_sk": b64(z_sk)},
                    "expected": {"outcome": "ok", "shown": shown(read_as_citizen(items, z_sk))}})
    team_sks = {kid(t): t_sk, kid(t2): t2_sk}
    for name, items, note_items in (("honest", rows, notes[:1]), ("attacked", attacked, notes), ("legacy", legacy, [])):
        read = read_as_team(items, note_items, z, team_sks)
        out.append({"id": f"conversation-team-{name}", "kind": "conversation_team",
                    "comment": "the inbox's rule, holding the pinned key and another team key",
                    "input": {"messages": as_rows(items), "notes": [{"envelope": e} for e in note_items],
                              "citizen_pk": b64(z), "team_sks": {k: b64(v) for k, v in sorted(team_sks.items())}},
                    "expected": {"outcome": "ok", "pin": read.pin, "messages": shown(read.messages), "notes": shown(read.notes)}})
    return out


def _flip(text: str, index: int) -> str:
    raw = bytearray(unb64(text))
    raw[index] ^= 0x01
    return b64(bytes(raw))
