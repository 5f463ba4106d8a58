// crypto/js/pow.mjs beyond the vectors: the solver finds what the checker accepts.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import sodium from 'libsodium-wrappers-sumo';
import { zeroBits, withPow } from '../../crypto/js/pow.mjs';

await sodium.ready;
const pow = withPow(sodium);

test('zeroBits counts from the most significant bit of byte 0', () => {
  assert.equal(zeroBits(new Uint8Array([0x80, 0])), 0);
  assert.equal(zeroBits(new Uint8Array([0x01, 0xff])), 7);
  assert.equal(zeroBits(new Uint8Array([0, 0x10])), 11);
  assert.equal(zeroBits(new Uint8Array(4)), 32);
});

test('a solution found in slices meets its bits, and wrong lengths never meet', () => {
  const challenge = sodium.randombytes_buf(32);
  let found = null;
  let tries = 0;
  while (!found) {
    const slice = pow.powSolveSome(challenge, 5, 1, 1024 * 1024, 50);
    tries += slice.tries;
    found = slice.nonce;
  }
  assert.equal(found.length, 8);
  assert.ok(tries >= 1);
  assert.ok(pow.powMeets(found, challenge, 5, 1, 1024 * 1024));
  assert.ok(zeroBits(pow.powDigest(found, challenge, 1, 1024 * 1024)) >= 5);
  assert.equal(pow.powMeets(found.subarray(0, 7), challenge, 0, 1, 1024 * 1024), false);
  assert.equal(pow.powMeets(found, challenge.subarray(0, 31), 0, 1, 1024 * 1024), false);
});
