// Fristed cryptography, version 1 (CRYPTO.md): the browser half.
//
// Pure: nothing here imports libsodium. `withSodium(sodium)` takes a ready
// libsodium.js (sumo) object, so the same file runs in Node (tests, from
// node_modules) and in the browser (crypto/js/sodium-browser.mjs, served from
// our own origin). crypto/vectors.json pins it to the Python half byte for byte.
import { envelope2 } from './envelope2.mjs';
import { withPow } from './pow.mjs';

/** One error type; `code` matches crypto/errors.py (parse, authentication, wrong_key, binding, bad_check_digit, bad_length). */
export class FristedCryptoError extends Error {
  constructor(code, message) {
    super(message);
    this.name = 'FristedCryptoError';
    this.code = code;
  }
}

export const PARSE = 'parse';
export const AUTHENTICATION = 'authentication';
export const WRONG_KEY = 'wrong_key';
export const BINDING = 'binding';
export const BAD_CHECK_DIGIT = 'bad_check_digit';
export const BAD_LENGTH = 'bad_length';

export const ENVELOPE_VERSION = 1;
export const PAD_BLOCK = 1024;
export const CODE_DIGITS = 16;
const AAD = 'fristed/v1';
const KEY_BLOB_AAD = 'fristed consultant key v1';
const XNONCE_BYTES = 24;
const KEY_BYTES = 32;
const SEAL_BYTES = 32 + 16 + KEY_BYTES;
const KID_BYTES = 16;
const TAG_BYTES = 16;
const MAX_RECIPIENTS = 8;

const utf8 = new TextEncoder();
const strictUtf8 = new TextDecoder('utf-8', { fatal: true });

// ---- b64: URL-safe base64 without padding (CRYPTO.md "Notation") ----

const ALPHABET = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_';
const INDEX = new Map([...ALPHABET].map((ch, i) => [ch, i]));
const B64_RE = /^[A-Za-z0-9_-]*$/;

/** URL-safe base64 without padding. */
export function b64(bytes) {
  let out = '';
  let i = 0;
  for (; i + 2 < bytes.length; i += 3) {
    const n = (bytes[i] << 16) | (bytes[i + 1] << 8) | bytes[i + 2];
    out += ALPHABET[n >> 18] + ALPHABET[(n >> 12) & 63] + ALPHABET[(n >> 6) & 63] + ALPHABET[n & 63];
  }
  const rest = bytes.length - i;
  if (rest === 1) {
    const n = bytes[i] << 16;
    out += ALPHABET[n >> 18] + ALPHABET[(n >> 12) & 63];
  } else if (rest === 2) {
    const n = (bytes[i] << 16) | (bytes[i + 1] << 8);
    out += ALPHABET[n >> 18] + ALPHABET[(n >> 12) & 63] + ALPHABET[(n >> 6) & 63];
  }
  return out;
}

/**
 * Strict `b64` decoding: URL-safe alphabet, no padding, canonical (one byte
 * string has exactly one spelling); `length`, when given, is the exact decoded
 * length. Anything else: FristedCryptoError('parse').
 */
export function unb64(text, length) {
  if (typeof text !== 'string' || !B64_RE.test(text) || text.length % 4 === 1) {
    throw new FristedCryptoError(PARSE, 'not URL-safe base64 without padding');
  }
  const out = new Uint8Array(Math.floor((text.length * 3) / 4));
  let bits = 0;
  let value = 0;
  let j = 0;
  for (const ch of text) {
    value = (value << 6) | INDEX.get(ch);
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      out[j++] = (value >> bits) & 0xff;
      value &= (1 << bits) - 1;
    }
  }
  // Leftover low bits must be zero, or the spelling is not canonical.
  if (value !== 0) {
    throw new FristedCryptoError(PARSE, 'not canonical base64');
  }
  if (length !== undefined && out.length !== length) {
    throw new FristedCryptoError(PARSE, `must be ${length} bytes`);
  }
  return out;
}

function bytesOf(value, length, what) {
  const bytes = typeof value === 'string' ? unb64(value, length) : value;
  if (!(bytes instanceof Uint8Array) || (length !== undefined && bytes.length !== length)) {
    throw new FristedCryptoError(PARSE, `${what} must be ${length} bytes`);
  }
  return bytes;
}

function concat(a, b) {
  const out = new Uint8Array(a.length + b.length);
  out.set(a, 0);
  out.set(b, a.length);
  return out;
}

// ---- the pickup code (CRYPTO.md "Pickup code") ----

// The Damm quasigroup of order 10: catches every single-digit error and every
// adjacent transposition (same table as crypto/code.py).
const DAMM = [
  [0, 3, 1, 7, 5, 9, 8, 6, 4, 2],
  [7, 0, 9, 2, 1, 5, 4, 8, 6, 3],
  [4, 2, 0, 6, 8, 7, 1, 3, 5, 9],
  [1, 7, 5, 0, 9, 8, 3, 4, 2, 6],
  [6, 1, 2, 3, 0, 4, 5, 9, 7, 8],
  [3, 6, 7, 4, 2, 0, 9, 5, 8, 1],
  [5, 8, 6, 9, 7, 2, 0, 1, 3, 4],
  [8, 9, 4, 5, 3, 6, 2, 0, 1, 7],
  [9, 4, 3, 8, 6, 1, 7, 2, 0, 5],
  [2, 5, 8, 1, 4, 3, 6, 7, 9, 0],
];

/** The Damm check digit (a one-character string) of an ASCII digit string. */
export function dammDigit(digits) {
  let interim = 0;
  for (const ch of digits) interim = DAMM[interim][ch.charCodeAt(0) - 48];
  return String(interim);
}

/**
 * What a person typed → 16 ASCII digits. Arabic-Indic (U+0660..) and Persian
 * (U+06F0..) digits become ASCII, every other non-digit is dropped; then
 * FristedCryptoError('bad_length') or ('bad_check_digit').
 */
export function normaliseCode(text) {
  let digits = '';
  for (const ch of String(text)) {
    const c = ch.codePointAt(0);
    if (c >= 0x30 && c <= 0x39) digits += ch;
    else if (c >= 0x660 && c <= 0x669) digits += String(c - 0x660);
    else if (c >= 0x6f0 && c <= 0x6f9) digits += String(c - 0x6f0);
  }
  if (digits.length !== CODE_DIGITS) throw new FristedCryptoError(BAD_LENGTH, 'a pickup code has 16 digits');
  if (dammDigit(digits) !== '0') throw new FristedCryptoError(BAD_CHECK_DIGIT, 'the pickup code has a typing error');
  return digits;
}

/**
 * A fresh code from a CSPRNG: `randomBytes(n)` returns n random bytes
 * (sodium.randombytes_buf, or crypto.getRandomValues on a page without
 * libsodium). 15 uniform digits by rejection sampling (no modulo bias) + the
 * Damm check digit.
 */
export function generateCodeFrom(randomBytes) {
  let body = '';
  while (body.length < CODE_DIGITS - 1) {
    for (const byte of randomBytes(32)) {
      // 250 = 25 * 10: bytes 250..255 would favour 0..5, so they are dropped.
      if (byte < 250 && body.length < CODE_DIGITS - 1) body += String(byte % 10);
    }
  }
  return body + dammDigit(body);
}

/** Four groups of four: "4821 0937 5562 1187". */
export function formatCode(digits) {
  return digits.match(/.{1,4}/g).join(' ');
}

// ---- the envelope's shape (what crypto/envelope.py parse_envelope checks) ----

/**
 * Check an envelope's shape; returns its kids in order, or throws
 * FristedCryptoError('parse'). Same rules as crypto/envelope.py.
 */
export function envelopeKids(envelope) {
  const bad = (message) => new FristedCryptoError(PARSE, message);
  if (!envelope || typeof envelope !== 'object' || Array.isArray(envelope)) throw bad('an envelope is an object');
  const fields = Object.keys(envelope).sort().join(',');
  if (fields !== 'ct,keys,nonce,v') throw bad('an envelope has exactly v, keys, nonce and ct');
  if (envelope.v !== ENVELOPE_VERSION) throw bad('unsupported envelope version');
  const keys = envelope.keys;
  if (!Array.isArray(keys) || keys.length < 1 || keys.length > MAX_RECIPIENTS) throw bad('1 to 8 recipients');
  const kids = [];
  for (const entry of keys) {
    if (!entry || typeof entry !== 'object' || Object.keys(entry).sort().join(',') !== 'box,kid') {
      throw bad('each recipient has exactly kid and box');
    }
    unb64(entry.kid, KID_BYTES);
    unb64(entry.box, SEAL_BYTES);
    kids.push(entry.kid);
  }
  if (new Set(kids).size !== kids.length) throw bad('a recipient appears twice');
  unb64(envelope.nonce, XNONCE_BYTES);
  const ct = unb64(envelope.ct);
  if (ct.length < PAD_BLOCK + TAG_BYTES || (ct.length - TAG_BYTES) % PAD_BLOCK) throw bad('ct is not padded');
  return kids;
}

// ---- everything that needs libsodium ----

/** The crypto operations on a ready libsodium.js (sumo) object. */
export function withSodium(sodium) {
  const hash = (n, message, key = null) => sodium.crypto_generichash(n, message, key);

  function argon2id(password, salt, ops, mem) {
    const s = bytesOf(salt, 16, 'an Argon2id salt');
    return sodium.crypto_pwhash(32, password, s, ops, mem, sodium.crypto_pwhash_ALG_ARGON2ID13);
  }

  function publicKey(sk) {
    return sodium.crypto_scalarmult_base(bytesOf(sk, 32, 'a secret key'));
  }

  function kid(pk) {
    return b64(hash(KID_BYTES, bytesOf(pk, 32, 'a public key')));
  }

  /** A fresh pickup code (16 ASCII digits) from libsodium's CSPRNG; see generateCodeFrom. */
  function generateCode() {
    return generateCodeFrom((n) => sodium.randombytes_buf(n));
  }

  /** Everything the code yields (CRYPTO.md): {master, sk, pk, accessToken, lookup}. */
  function deriveCitizen(digits, codeSalt, ops, mem) {
    if (!/^[0-9]{16}$/.test(digits)) throw new FristedCryptoError(BAD_LENGTH, 'a pickup code has 16 digits');
    const master = argon2id(digits, codeSalt, ops, mem);
    // Z.sk is used directly as the X25519 scalar (not as a crypto_box seed).
    const sk = hash(32, 'fristed citizen key v1', master);
    const accessToken = hash(32, 'fristed access token v1', master);
    return { master, sk, pk: sodium.crypto_scalarmult_base(sk), accessToken, lookup: hash(32, accessToken) };
  }

  /** {master, authKey, authHash, kek} from a passphrase (NFC-normalised first). */
  function deriveStaff(passphrase, salt, ops, mem) {
    const master = argon2id(utf8.encode(String(passphrase).normalize('NFC')), salt, ops, mem);
    const authKey = hash(32, 'fristed staff auth v1', master);
    return { master, authKey, authHash: hash(32, authKey), kek: hash(32, 'fristed staff kek v1', master) };
  }

  /** nonce(24) || XChaCha20-Poly1305-IETF(kek, nonce, aad, C.sk). */
  function sealKeyBlob(kek, cSk, nonce) {
    const n = nonce === undefined ? sodium.randombytes_buf(XNONCE_BYTES) : bytesOf(nonce, XNONCE_BYTES, 'a nonce');
    const ct = sodium.crypto_aead_xchacha20poly1305_ietf_encrypt(
      bytesOf(cSk, 32, 'a secret key'), KEY_BLOB_AAD, null, n, bytesOf(kek, 32, 'a kek'));
    return concat(n, ct);
  }

  /** C.sk, or 'parse' (not 72 bytes) / 'authentication' (wrong passphrase or tampering). */
  function openKeyBlob(kek, blob) {
    const b = bytesOf(blob, undefined, 'a key_blob');
    if (b.length !== XNONCE_BYTES + 32 + TAG_BYTES) throw new FristedCryptoError(PARSE, 'a key_blob is 72 bytes');
    try {
      return sodium.crypto_aead_xchacha20poly1305_ietf_decrypt(
        null, b.subarray(XNONCE_BYTES), KEY_BLOB_AAD, b.subarray(0, XNONCE_BYTES), bytesOf(kek, 32, 'a kek'));
    } catch {
      throw new FristedCryptoError(AUTHENTICATION, 'the key could not be unlocked');
    }
  }

  /**
   * crypto_box_seal. With `ephemeralSk` it is built step by step (for the
   * vectors): epk || crypto_box_easy(m, BLAKE2b(24, epk||pk), pk, esk).
   */
  function sealBox(pk, message, ephemeralSk) {
    const p = bytesOf(pk, 32, 'a public key');
    if (ephemeralSk === undefined || ephemeralSk === null) return sodium.crypto_box_seal(message, p);
    const esk = bytesOf(ephemeralSk, 32, 'an ephemeral key');
    const epk = sodium.crypto_scalarmult_base(esk);
    const nonce = hash(24, concat(epk, p));
    return concat(epk, sodium.crypto_box_easy(message, nonce, p, esk));
  }

  /** crypto_box_seal_open, or 'wrong_key'. */
  function openBox(box, pk, sk) {
    try {
      return sodium.crypto_box_seal_open(bytesOf(box, undefined, 'a box'), bytesOf(pk, 32, 'a public key'), bytesOf(sk, 32, 'a secret key'));
    } catch {
      throw new FristedCryptoError(WRONG_KEY, 'this could not be opened with this key');
    }
  }

  /**
   * Seal a plaintext JSON string (a UTF-8 JSON object with "text") to every
   * recipient public key. `opts` {contentKey, nonce, ephemeralSks} are for the
   * test vectors only; left out they are random.
   */
  function sealEnvelopeJson(plaintextJson, recipientPks, opts = {}) {
    let parsed;
    try {
      parsed = JSON.parse(plaintextJson);
    } catch {
      throw new FristedCryptoError(PARSE, 'the plaintext is not JSON');
    }
    if (!parsed || typeof parsed !== 'object' || Array.isArray(parsed) || !('text' in parsed)) {
      throw new FristedCryptoError(PARSE, 'a plaintext needs a text field');
    }
    const pks = [...recipientPks].map((pk) => bytesOf(pk, 32, 'a public key'));
    if (pks.length < 1 || pks.length > MAX_RECIPIENTS) throw new FristedCryptoError(PARSE, '1 to 8 recipients');
    const k = opts.contentKey === undefined ? sodium.randombytes_buf(KEY_BYTES) : bytesOf(opts.contentKey, KEY_BYTES, 'a content key');
    const n = opts.nonce === undefined ? sodium.randombytes_buf(XNONCE_BYTES) : bytesOf(opts.nonce, XNONCE_BYTES, 'a nonce');
    const esks = opts.ephemeralSks === undefined ? pks.map(() => undefined) : [...opts.ephemeralSks];
    if (esks.length !== pks.length) throw new FristedCryptoError(PARSE, 'one ephemeral key per recipient');
    const padded = sodium.pad(utf8.encode(plaintextJson), PAD_BLOCK);
    const ct = sodium.crypto_aead_xchacha20poly1305_ietf_encrypt(padded, AAD, null, n, k);
    const keys = pks.map((pk, i) => ({ kid: kid(pk), box: b64(sealBox(pk, k, esks[i])) }));
    if (opts.contentKey === undefined) sodium.memzero(k);
    return { v: ENVELOPE_VERSION, keys, nonce: b64(n), ct: b64(ct) };
  }

  /** Seal a plaintext object ({text, …}); see sealEnvelopeJson. */
  function sealEnvelope(plaintext, recipientPks, opts = {}) {
    return sealEnvelopeJson(JSON.stringify(plaintext), recipientPks, opts);
  }

  /**
   * Open an envelope (object or its JSON text) with one recipient secret key:
   * the plaintext object. Errors as crypto/envelope.py open_envelope: 'parse'
   * (not an envelope, bad padding or JSON), 'wrong_key' (not addressed to this
   * key, or its box does not open), 'authentication' (content tampered with).
   */
  function openEnvelope(envelope, sk) {
    let data = envelope;
    if (typeof envelope === 'string') {
      try {
        data = JSON.parse(envelope);
      } catch {
        throw new FristedCryptoError(PARSE, 'not an envelope');
      }
    }
    envelopeKids(data);
    const secret = bytesOf(sk, 32, 'a secret key');
    const pk = sodium.crypto_scalarmult_base(secret);
    const mine = kid(pk);
    const entry = data.keys.find((e) => e.kid === mine);
    if (!entry) throw new FristedCryptoError(WRONG_KEY, 'this message is not addressed to this key');
    const k = openBox(unb64(entry.box), pk, secret);
    let padded;
    try {
      padded = sodium.crypto_aead_xchacha20poly1305_ietf_decrypt(null, unb64(data.ct), AAD, unb64(data.nonce), k);
    } catch {
      throw new FristedCryptoError(AUTHENTICATION, 'the message was altered');
    } finally {
      sodium.memzero(k);
    }
    let plaintext;
    try {
      plaintext = JSON.parse(strictUtf8.decode(sodium.unpad(padded, PAD_BLOCK)));
    } catch {
      throw new FristedCryptoError(PARSE, 'the message content is malformed');
    }
    if (!plaintext || typeof plaintext !== 'object' || Array.isArray(plaintext) || typeof plaintext.text !== 'string') {
      throw new FristedCryptoError(PARSE, 'the message content is malformed');
    }
    return plaintext;
  }

  const v2 = envelope2(sodium, { FristedCryptoError, b64, unb64, kid, publicKey, PAD_BLOCK });

  return {
    ...withPow(sodium), // proof of work (pow.mjs)
    ...v2,
    generateCode,
    kid,
    publicKey,
    deriveCitizen,
    deriveStaff,
    sealKeyBlob,
    openKeyBlob,
    sealBox,
    openBox,
    sealEnvelope,
    sealEnvelopeJson,
    openEnvelope,
  };
}
