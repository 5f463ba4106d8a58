// Proof of work for anonymous writes (INTERFACES.md "Version 1.1 additions"),
// the browser half of crypto/pow.py. A solution is a nonce of 8 to 32 bytes
// with Argon2id(nonce, challenge[0:16], ops, mem) (32 bytes) starting with at
// least `bits` zero bits, counted from the most significant bit of h[0].
// Pure like fristed.mjs: `withPow(sodium)` takes a ready libsodium.js (sumo).

export const CHALLENGE_BYTES = 32;
export const MIN_NONCE = 8;
export const MAX_NONCE = 32;

/** Leading zero bits of `h`, from the most significant bit of h[0]. */
export function zeroBits(h) {
  let count = 0;
  for (const byte of h) {
    if (byte) return count + Math.clz32(byte) - 24;
    count += 8;
  }
  return count;
}

/** The proof-of-work operations on a ready libsodium.js (sumo) object. */
export function withPow(sodium) {
  /** Argon2id(nonce, challenge[0:16], ops, mem), 32 bytes. */
  function powDigest(nonce, challenge, ops, mem) {
    return sodium.crypto_pwhash(32, nonce, challenge.subarray(0, 16), ops, mem, sodium.crypto_pwhash_ALG_ARGON2ID13);
  }

  /** Whether `nonce` solves `challenge` at `bits` (a nonce or challenge of the wrong length never does). */
  function powMeets(nonce, challenge, bits, ops, mem) {
    if (nonce.length < MIN_NONCE || nonce.length > MAX_NONCE || challenge.length !== CHALLENGE_BYTES) return false;
    return bits <= 0 || zeroBits(powDigest(nonce, challenge, ops, mem)) >= bits;
  }

  /**
   * Try random 8-byte nonces for about `budgetMs` (at least one try):
   * {nonce, tries} with the solving nonce, or nonce null when the budget ran
   * out. Short slices keep the worker free for sealing between them.
   */
  function powSolveSome(challenge, bits, ops, mem, budgetMs = 100) {
    const end = Date.now() + budgetMs;
    let tries = 0;
    do {
      const nonce = sodium.randombytes_buf(MIN_NONCE);
      tries++;
      if (powMeets(nonce, challenge, bits, ops, mem)) return { nonce, tries };
    } while (Date.now() < end);
    return { nonce: null, tries };
  }

  return { powDigest, powMeets, powSolveSome };
}
