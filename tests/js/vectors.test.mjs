// crypto/vectors.json against crypto/js/fristed.mjs in Node (CRYPTO.md "Test vectors").
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import sodium from 'libsodium-wrappers-sumo';
import { withSodium } from '../../crypto/js/fristed.mjs';
import { checkAll, checkVector } from '../../crypto/js/testkit.mjs';

await sodium.ready;
const api = withSodium(sodium);
const file = JSON.parse(readFileSync(new URL('../../crypto/vectors.json', import.meta.url), 'utf8'));

test('every vector in crypto/vectors.json passes', () => {
  const ids = checkAll(api, file);
  assert.equal(ids.length, file.vectors.length);
  assert.ok(ids.length >= 30);
});

for (const vector of file.vectors) {
  test(`vector ${vector.id}: ${vector.comment}`, () => checkVector(api, file, vector));
}

test('an unknown kind fails the run', () => {
  const bad = { ...file, vectors: [{ id: 'x', kind: 'mystery', comment: '', input: {}, expected: { outcome: 'ok' } }] };
  assert.throws(() => checkAll(api, bad), /unknown kind/);
});

test('an unknown outcome fails the run', () => {
  const vector = { ...file.vectors[0], expected: { outcome: 'maybe' } };
  assert.throws(() => checkVector(api, file, vector), /unknown outcome/);
});

test('an unknown kind listed in the file header fails the run', () => {
  assert.throws(() => checkAll(api, { ...file, kinds: [...file.kinds, 'mystery'] }), /unknown kind/);
});
