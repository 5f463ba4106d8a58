// Runs crypto/vectors.json against this JavaScript implementation: the same
// checks in Node (tests/js/) and in headless Chromium (tests/browser/). Never
// loaded by a citizen or staff page. An unknown `kind` or `outcome` fails the run.

import * as fc from './fristed.mjs';
import { zeroBits } from './pow.mjs';

/** JSON with sorted keys: compares objects regardless of key order. */
export function canonical(value) {
  if (Array.isArray(value)) return `[${value.map(canonical).join(',')}]`;
  if (value && typeof value === 'object') {
    return `{${Object.keys(value).sort().map((k) => `${JSON.stringify(k)}:${canonical(value[k])}`).join(',')}}`;
  }
  return JSON.stringify(value);
}

function same(label, got, want) {
  const g = canonical(got);
  const w = canonical(want);
  if (g !== w) throw new Error(`${label}: got ${g.slice(0, 200)}, want ${w.slice(0, 200)}`);
}

// Each kind: run the operation, return the fields to compare with `expected`.
const KINDS = {
  code_normalise: (api, i) => ({ digits: fc.normaliseCode(i.text) }),
  check_digit: (api, i) => ({ digit: fc.dammDigit(i.digits) }),
  citizen_keys: (api, i) => {
    const k = api.deriveCitizen(i.digits, fc.unb64(i.code_salt, 16), i.ops, i.mem);
    return {
      master: fc.b64(k.master), z_sk: fc.b64(k.sk), z_pk: fc.b64(k.pk), z_kid: api.kid(k.pk),
      access_token: fc.b64(k.accessToken), lookup: fc.b64(k.lookup),
    };
  },
  staff_keys: (api, i) => {
    const k = api.deriveStaff(i.passphrase, fc.unb64(i.salt, 16), i.ops, i.mem);
    return { master: fc.b64(k.master), auth_key: fc.b64(k.authKey), auth_hash: fc.b64(k.authHash), kek: fc.b64(k.kek) };
  },
  key_blob_seal: (api, i) => {
    const cSk = fc.unb64(i.c_sk, 32);
    const pk = api.publicKey(cSk);
    return { key_blob: fc.b64(api.sealKeyBlob(fc.unb64(i.kek, 32), cSk, fc.unb64(i.nonce, 24))), c_pk: fc.b64(pk), c_kid: api.kid(pk) };
  },
  key_blob_open: (api, i) => ({ c_sk: fc.b64(api.openKeyBlob(fc.unb64(i.kek, 32), fc.unb64(i.key_blob))) }),
  envelope_seal: (api, i) => ({
    envelope: api.sealEnvelopeJson(i.plaintext, i.recipients.map((r) => fc.unb64(r.pk, 32)), {
      contentKey: fc.unb64(i.content_key, 32),
      nonce: fc.unb64(i.nonce, 24),
      ephemeralSks: i.recipients.map((r) => fc.unb64(r.ephemeral_sk, 32)),
    }),
  }),
  envelope_open: (api, i) => ({ plaintext: api.openEnvelope(i.envelope, fc.unb64(i.sk, 32)) }),
  v2_binding: (api, i) => {
    const b = api.binding(i.role, i.seq, i.citizen_pk, i.team_pk);
    return { aad: new TextDecoder().decode(api.aad(b)), box_nonce: fc.b64(api.boxNonce(b, fc.unb64(i.nonce, 24), fc.unb64(i.recipient_pk, 32))) };
  },
  envelope2_seal: (api, i) => ({
    envelope: api.sealV2Json(i.plaintext, api.binding(i.role, i.seq, i.citizen_pk, i.team_pk), fc.unb64(i.sender_sk, 32), {
      contentKey: fc.unb64(i.content_key, 32), nonce: fc.unb64(i.nonce, 24),
    }),
  }),
  envelope2_open: (api, i) => ({
    plaintext: api.openV2(i.envelope, fc.unb64(i.reader_sk, 32), api.binding(i.role, i.seq, i.citizen_pk, i.team_pk)),
  }),
  conversation_citizen: (api, i) => ({ shown: api.readAsCitizen(i.messages, fc.unb64(i.z_sk, 32), api.openEnvelope) }),
  conversation_team: (api, i) => {
    const sks = new Map(Object.entries(i.team_sks).map(([k, v]) => [k, fc.unb64(v, 32)]));
    return api.readAsTeam(i.messages, i.notes, i.citizen_pk, sks, api.openEnvelope);
  },
  pow: (api, i) => {
    const nonce = fc.unb64(i.nonce);
    const challenge = fc.unb64(i.challenge);
    const out = { meets: api.powMeets(nonce, challenge, i.bits, i.ops, i.mem) };
    if (nonce.length < 8 || nonce.length > 32) return out;
    const digest = api.powDigest(nonce, challenge, i.ops, i.mem);
    return { ...out, digest: fc.b64(digest), zero_bits: zeroBits(digest) };
  },
  kid: (api, i) => ({ kid: api.kid(fc.unb64(i.pk, 32)) }),
  public_key: (api, i) => ({ pk: fc.b64(api.publicKey(fc.unb64(i.sk, 32))) }),
};

/** Check one vector; throws with the vector id on any mismatch. */
export function checkVector(api, file, vector) {
  if (!(vector.kind in KINDS) || !file.kinds.includes(vector.kind)) throw new Error(`${vector.id}: unknown kind ${vector.kind}`);
  const { outcome, ...fields } = vector.expected;
  if (!file.outcomes.includes(outcome) || !['ok', 'parse', 'authentication', 'wrong_key', 'binding', 'bad_check_digit', 'bad_length'].includes(outcome)) {
    throw new Error(`${vector.id}: unknown outcome ${outcome}`);
  }
  let got;
  try {
    got = KINDS[vector.kind](api, vector.input);
  } catch (err) {
    if (!(err instanceof fc.FristedCryptoError)) throw new Error(`${vector.id}: crashed: ${err}`);
    if (err.code !== outcome) throw new Error(`${vector.id}: failed with ${err.code}, want ${outcome}`);
    return;
  }
  if (outcome !== 'ok') throw new Error(`${vector.id}: succeeded, want ${outcome}`);
  for (const [name, want] of Object.entries(fields)) {
    if (!(name in got)) throw new Error(`${vector.id}: unknown expected field ${name}`);
    same(`${vector.id}.${name}`, got[name], want);
  }
}

/** Check every vector of the file; returns the ids checked (the caller asserts the count). */
export function checkAll(api, file) {
  if (file.version !== 1) throw new Error(`unknown vectors version ${file.version}`);
  for (const kind of file.kinds) if (!(kind in KINDS)) throw new Error(`unknown kind ${kind}`);
  return file.vectors.map((vector) => {
    checkVector(api, file, vector);
    return vector.id;
  });
}
