// crypto/js/fristed.mjs beyond the vectors: randomised sealing (round trip +
// tamper), strict b64, code generation and normalisation.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import sodium from 'libsodium-wrappers-sumo';
import {
  FristedCryptoError, b64, unb64, dammDigit, normaliseCode, formatCode, withSodium, envelopeKids,
} from '../../crypto/js/fristed.mjs';

await sodium.ready;
const api = withSodium(sodium);
const code = (fn, want) => assert.throws(fn, (err) => err instanceof FristedCryptoError && err.code === want);

function flipB64(text, index) {
  const raw = unb64(text);
  raw[index] ^= 1;
  return b64(raw);
}

test('b64 round-trips every length and matches the URL-safe alphabet', () => {
  for (let n = 0; n < 70; n++) {
    const bytes = sodium.randombytes_buf(n);
    const text = b64(bytes);
    assert.equal(text, sodium.to_base64(bytes, sodium.base64_variants.URLSAFE_NO_PADDING));
    assert.deepEqual(unb64(text, n), bytes);
  }
});

test('unb64 rejects padded, standard-alphabet, non-canonical and wrong-length input', () => {
  code(() => unb64('AAA='), 'parse');
  code(() => unb64('ab+/'), 'parse');
  code(() => unb64('A'), 'parse');
  code(() => unb64('AB'), 'parse'); // stray low bits: canonical is "AA"
  code(() => unb64(' AA'), 'parse');
  code(() => unb64(42), 'parse');
  code(() => unb64('AAAA', 2), 'parse');
  assert.deepEqual(unb64('AA'), new Uint8Array([0]));
});

test('generated codes are 16 digits that pass their own check digit', () => {
  const seen = new Set();
  for (let i = 0; i < 200; i++) {
    const c = api.generateCode();
    assert.match(c, /^[0-9]{16}$/);
    assert.equal(normaliseCode(formatCode(c)), c);
    assert.equal(dammDigit(c), '0');
    seen.add(c);
  }
  assert.equal(seen.size, 200);
});

test('generated digits are roughly uniform (no modulo bias)', () => {
  const counts = new Array(10).fill(0);
  for (let i = 0; i < 2000; i++) for (const ch of api.generateCode().slice(0, 15)) counts[Number(ch)]++;
  for (const n of counts) assert.ok(n > 2400 && n < 3600, `digit count ${n} of 30000`);
});

test('normaliseCode accepts spaces, dashes and Arabic-Indic or Persian digits', () => {
  const c = api.generateCode();
  const arabic = [...c].map((d) => String.fromCodePoint(0x660 + Number(d))).join('');
  const persian = [...c].map((d) => String.fromCodePoint(0x6f0 + Number(d))).join('-');
  assert.equal(normaliseCode(arabic), c);
  assert.equal(normaliseCode(persian), c);
  assert.equal(normaliseCode(` ${c.slice(0, 8)} - ${c.slice(8)} `), c);
  assert.equal(formatCode(c), `${c.slice(0, 4)} ${c.slice(4, 8)} ${c.slice(8, 12)} ${c.slice(12)}`);
  code(() => normaliseCode(c.slice(1)), 'bad_length');
  const typo = c.slice(0, 3) + String((Number(c[3]) + 1) % 10) + c.slice(4);
  code(() => normaliseCode(typo), 'bad_check_digit');
});

test('a randomised envelope opens for every recipient and for no one else', () => {
  const team = sodium.crypto_box_keypair();
  const citizen = sodium.crypto_box_keypair();
  const stranger = sodium.crypto_box_keypair();
  const env = api.sealEnvelope({ text: 'Hej — مرحبا 👋' }, [team.publicKey, citizen.publicKey]);
  assert.deepEqual(envelopeKids(env), [api.kid(team.publicKey), api.kid(citizen.publicKey)]);
  assert.equal(unb64(env.ct).length, 1024 + 16);
  for (const kp of [team, citizen]) assert.deepEqual(api.openEnvelope(env, kp.privateKey), { text: 'Hej — مرحبا 👋' });
  assert.deepEqual(api.openEnvelope(JSON.stringify(env), team.privateKey).text, 'Hej — مرحبا 👋');
  code(() => api.openEnvelope(env, stranger.privateKey), 'wrong_key');
  const again = api.sealEnvelope({ text: 'Hej — مرحبا 👋' }, [team.publicKey, citizen.publicKey]);
  assert.notEqual(again.ct, env.ct);
});

test('flipping one byte anywhere in a randomised envelope makes it fail', () => {
  const team = sodium.crypto_box_keypair();
  const env = api.sealEnvelope({ text: 'tamper me' }, [team.publicKey]);
  for (const i of [0, 17, 500, 1039]) code(() => api.openEnvelope({ ...env, ct: flipB64(env.ct, i) }, team.privateKey), 'authentication');
  code(() => api.openEnvelope({ ...env, nonce: flipB64(env.nonce, 3) }, team.privateKey), 'authentication');
  for (const i of [0, 40, 79]) {
    const keys = [{ ...env.keys[0], box: flipB64(env.keys[0].box, i) }];
    code(() => api.openEnvelope({ ...env, keys }, team.privateKey), 'wrong_key');
  }
  code(() => api.openEnvelope({ ...env, v: 2 }, team.privateKey), 'parse');
  code(() => api.openEnvelope({ ...env, extra: 1 }, team.privateKey), 'parse');
  code(() => api.openEnvelope('not json', team.privateKey), 'parse');
});

test('a randomised sealed box matches libsodium and fails when tampered', () => {
  const kp = sodium.crypto_box_keypair();
  const box = api.sealBox(kp.publicKey, new Uint8Array([1, 2, 3]));
  assert.deepEqual(sodium.crypto_box_seal_open(box, kp.publicKey, kp.privateKey), new Uint8Array([1, 2, 3]));
  const esk = sodium.randombytes_buf(32);
  const det = api.sealBox(kp.publicKey, new Uint8Array([4]), esk);
  assert.deepEqual(api.openBox(det, kp.publicKey, kp.privateKey), new Uint8Array([4]));
  det[40] ^= 1;
  code(() => api.openBox(det, kp.publicKey, kp.privateKey), 'wrong_key');
});

test('a randomised key blob round-trips and fails tampered or with another kek', () => {
  const kek = sodium.randombytes_buf(32);
  const sk = sodium.randombytes_buf(32);
  const blob = api.sealKeyBlob(kek, sk);
  assert.equal(blob.length, 72);
  assert.deepEqual(api.openKeyBlob(kek, blob), sk);
  assert.notDeepEqual(api.sealKeyBlob(kek, sk), blob);
  const bad = blob.slice();
  bad[50] ^= 1;
  code(() => api.openKeyBlob(kek, bad), 'authentication');
  code(() => api.openKeyBlob(sodium.randombytes_buf(32), blob), 'authentication');
  code(() => api.openKeyBlob(kek, blob.slice(1)), 'parse');
});

test('citizen and staff derivations are consistent', () => {
  const c = api.generateCode();
  const salt = sodium.randombytes_buf(16);
  const a = api.deriveCitizen(c, salt, 1, 8192);
  const b = api.deriveCitizen(c, b64(salt), 1, 8192);
  assert.deepEqual(a.accessToken, b.accessToken);
  assert.deepEqual(a.pk, api.publicKey(a.sk));
  assert.deepEqual(a.lookup, sodium.crypto_generichash(32, a.accessToken));
  code(() => api.deriveCitizen('123', salt, 1, 8192), 'bad_length');
  code(() => api.deriveCitizen(c, new Uint8Array(15), 1, 8192), 'parse');
  const s1 = api.deriveStaff('A\u030angstrom', salt, 1, 8192);
  const s2 = api.deriveStaff('\u00c5ngstrom', salt, 1, 8192);
  assert.deepEqual(s1.kek, s2.kek);
  assert.deepEqual(s1.authHash, sodium.crypto_generichash(32, s1.authKey));
});

test('sealing refuses a plaintext without text', () => {
  const kp = sodium.crypto_box_keypair();
  code(() => api.sealEnvelope({ body: 'x' }, [kp.publicKey]), 'parse');
  code(() => api.sealEnvelopeJson('[1]', [kp.publicKey]), 'parse');
});
