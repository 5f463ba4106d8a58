// Envelope v2 (crypto/js/envelope2.mjs) beyond the vectors: randomised round trips, tampering,
// the role's own key, and the readers' rule over freshly made forgeries.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import sodium from 'libsodium-wrappers-sumo';
import { FristedCryptoError, b64, unb64, withSodium } from '../../crypto/js/fristed.mjs';

await sodium.ready;
const api = withSodium(sodium);
const code = (fn, want) => assert.throws(fn, (err) => err instanceof FristedCryptoError && err.code === want);
const keys = () => sodium.crypto_box_keypair();

function flip(text, index) {
  const raw = unb64(text);
  raw[index] ^= 1;
  return b64(raw);
}

test('each role round-trips, randomised, for exactly its recipients', () => {
  const z = keys();
  const t = keys();
  const reply = api.binding('consultant', 2, z.publicKey, t.publicKey);
  const env = api.sealV2({ text: 'Vi er her ✓' }, reply, t.privateKey);
  assert.equal(api.openV2(env, z.privateKey, reply).text, 'Vi er her ✓');
  assert.equal(api.openV2(env, t.privateKey, reply).text, 'Vi er her ✓');
  assert.notEqual(api.sealV2({ text: 'Vi er her ✓' }, reply, t.privateKey).ct, env.ct);
  const note = api.binding('note', 0, z.publicKey, t.publicKey);
  const n = api.sealV2({ text: 'n' }, note, t.privateKey);
  assert.equal(n.keys.length, 1);
  code(() => api.openV2(n, z.privateKey, note), 'wrong_key');
  code(() => api.sealV2({ text: 'x' }, reply, z.privateKey), 'binding');
  code(() => api.binding('note', 3, z.publicKey, t.publicKey), 'parse');
  code(() => api.binding('server', 1, z.publicKey, t.publicKey), 'parse');
});

test('flipping a byte of ct, nonce or a box fails authentication; a bad header is parse', () => {
  const z = keys();
  const t = keys();
  const b = api.binding('citizen', 1, z.publicKey, t.publicKey);
  const env = api.sealV2({ text: 'x' }, b, z.privateKey);
  for (const i of [0, 500, 1039]) code(() => api.openV2({ ...env, ct: flip(env.ct, i) }, t.privateKey, b), 'authentication');
  code(() => api.openV2({ ...env, nonce: flip(env.nonce, 2) }, t.privateKey, b), 'authentication');
  const boxes = [{ ...env.keys[0], box: flip(env.keys[0].box, 20) }, env.keys[1]];
  code(() => api.openV2({ ...env, keys: boxes }, t.privateKey, b), 'authentication');
  code(() => api.openV2({ ...env, extra: 1 }, t.privateKey, b), 'parse');
  code(() => api.openV2({ ...env, seq: '1' }, t.privateKey, b), 'parse');
  code(() => api.openV2({ ...env, keys: [...env.keys].reverse() }, t.privateKey, b), 'parse');
});

test('the readers show fresh forgeries as unverified, without text', () => {
  const z = keys();
  const t = keys();
  const attacker = keys();
  const rows = [
    { seq: 1, from: 'citizen', envelope: api.sealV2({ text: 'hjælp' }, api.binding('citizen', 1, z.publicKey, t.publicKey), z.privateKey) },
    { seq: 2, from: 'consultant', envelope: api.sealV2({ text: 'svar' }, api.binding('consultant', 2, z.publicKey, t.publicKey), t.privateKey) },
  ];
  const forged = api.sealV2({ text: 'mød mig' }, api.binding('consultant', 3, z.publicKey, attacker.publicKey), attacker.privateKey);
  forged.team = b64(t.publicKey);
  forged.keys[0].kid = api.kid(t.publicKey);
  rows.push({ seq: 3, from: 'consultant', envelope: forged });
  rows.push({ seq: 4, from: 'consultant', envelope: api.sealEnvelope({ text: 'mød mig' }, [t.publicKey, z.publicKey]) });
  rows.push({ seq: 5, from: 'consultant', envelope: rows[0].envelope });
  const shown = api.readAsCitizen(rows, z.privateKey, api.openEnvelope);
  assert.deepEqual(shown.map((r) => [r.seq, r.verified, r.text]), [
    [1, true, 'hjælp'], [2, true, 'svar'], [3, false, null], [4, false, null], [5, false, null]]);
  const team = api.readAsTeam(rows, [], z.publicKey, new Map([[api.kid(t.publicKey), t.privateKey]]), api.openEnvelope);
  assert.equal(team.pin, api.kid(t.publicKey));
  assert.deepEqual(team.messages.map((r) => r.verified), [true, true, false, false, false]);
  assert.deepEqual(api.citizenPin(rows, z.privateKey), t.publicKey);
});
