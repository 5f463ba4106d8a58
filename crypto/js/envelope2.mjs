// Envelope version 2 (crypto/README.md "Envelope v2"): authenticated key boxes
// (crypto_box from the sender's key) and a binding of role, seq, thread (Z.pk)
// and the pinned team key into every box nonce and the content AAD. The same
// rules as crypto/envelope2.py; crypto/vectors.json pins both byte for byte.
// Pure: `envelope2(sodium, base)` takes a ready libsodium and fristed.mjs's
// helpers, so it runs in Node, in the page and in the key worker.

export const VERSION2 = 2;
export const ROLES = ['citizen', 'consultant', 'note'];
const BOX_BYTES = 48;
const MAX_SEQ = 2 ** 31 - 1;
const FIELDS = 'ct,from,keys,nonce,seq,team,thread,v';

export function envelope2(sodium, { FristedCryptoError, b64, unb64, kid, publicKey, PAD_BLOCK }) {
  const fail = (code, message) => new FristedCryptoError(code, message);
  const utf8 = new TextEncoder();
  const strictUtf8 = new TextDecoder('utf-8', { fatal: true });
  const bytes = (value, n) => (typeof value === 'string' ? unb64(value, n) : value);

  /** {role, seq, citizenPk, teamPk}, checked; keys as Uint8Array or b64. */
  function binding(role, seq, citizenPk, teamPk) {
    if (!ROLES.includes(role)) throw fail('parse', 'role is citizen, consultant or note');
    if (!Number.isInteger(seq) || !(role === 'note' ? seq === 0 : seq >= 1 && seq <= MAX_SEQ)) {
      throw fail('parse', 'seq is 0 for a note, else 1 to 2^31-1');
    }
    const z = bytes(citizenPk, 32);
    const t = bytes(teamPk, 32);
    if (!(z instanceof Uint8Array) || z.length !== 32 || !(t instanceof Uint8Array) || t.length !== 32) {
      throw fail('parse', 'keys are 32 bytes');
    }
    return { role, seq, citizenPk: z, teamPk: t };
  }

  /** "fristed/v2|<role>|<seq>|<b64 Z.pk>|<b64 T.pk>" as ASCII bytes. */
  function aad(b) {
    return utf8.encode(`fristed/v2|${b.role}|${b.seq}|${b64(b.citizenPk)}|${b64(b.teamPk)}`);
  }

  /** BLAKE2b(24, aad || nonce || R.pk). */
  function boxNonce(b, nonce, recipientPk) {
    const a = aad(b);
    const input = new Uint8Array(a.length + nonce.length + recipientPk.length);
    input.set(a, 0);
    input.set(nonce, a.length);
    input.set(recipientPk, a.length + nonce.length);
    return sodium.crypto_generichash(24, input, null);
  }

  const recipients = (b) => (b.role === 'note' ? [b.teamPk] : [b.teamPk, b.citizenPk]);
  const senderPk = (b) => (b.role === 'citizen' ? b.citizenPk : b.teamPk);
  const same = (x, y) => x.length === y.length && x.every((v, i) => v === y[i]);

  /**
   * Seal a plaintext JSON string (byte for byte) at binding `b`, authenticated
   * by `senderSk` (Z.sk for a citizen message, the pinned T.sk otherwise).
   * `opts` {contentKey, nonce} exist for the vectors only.
   */
  function sealV2Json(plaintextJson, b, senderSk, opts = {}) {
    let parsed;
    try {
      parsed = JSON.parse(plaintextJson);
    } catch {
      throw fail('parse', 'the plaintext is not JSON');
    }
    if (!parsed || typeof parsed !== 'object' || Array.isArray(parsed) || typeof parsed.text !== 'string') {
      throw fail('parse', 'a plaintext needs a text field');
    }
    const sk = bytes(senderSk, 32);
    if (!same(publicKey(sk), senderPk(b))) throw fail('binding', `a ${b.role} message is made with the ${b.role}'s own key`);
    const k = opts.contentKey === undefined ? sodium.randombytes_buf(32) : bytes(opts.contentKey, 32);
    const n = opts.nonce === undefined ? sodium.randombytes_buf(24) : bytes(opts.nonce, 24);
    const ct = sodium.crypto_aead_xchacha20poly1305_ietf_encrypt(sodium.pad(utf8.encode(plaintextJson), PAD_BLOCK), aad(b), null, n, k);
    const keys = recipients(b).map((pk) => ({ kid: kid(pk), box: b64(sodium.crypto_box_easy(k, boxNonce(b, n, pk), pk, sk)) }));
    if (opts.contentKey === undefined) sodium.memzero(k);
    return { v: VERSION2, from: b.role, seq: b.seq, thread: kid(b.citizenPk), team: b64(b.teamPk), keys, nonce: b64(n), ct: b64(ct) };
  }

  /** Seal a plaintext object ({text, …}); see sealV2Json. */
  function sealV2(plaintext, b, senderSk, opts = {}) {
    return sealV2Json(JSON.stringify(plaintext), b, senderSk, opts);
  }

  /** The shape rules of crypto/envelope2.py parse_v2; the header {role, seq, threadKid, teamPk} or 'parse'. */
  function headerV2(envelope) {
    const bad = (message) => fail('parse', message);
    if (!envelope || typeof envelope !== 'object' || Array.isArray(envelope)) throw bad('an envelope is an object');
    if (Object.keys(envelope).sort().join(',') !== FIELDS) throw bad('a version 2 envelope has exactly its eight fields');
    if (envelope.v !== VERSION2) throw bad('unsupported envelope version');
    const { from: role, seq } = envelope;
    if (!ROLES.includes(role)) throw bad('from is citizen, consultant or note');
    if (!Number.isInteger(seq) || !(role === 'note' ? seq === 0 : seq >= 1 && seq <= MAX_SEQ)) throw bad('bad seq');
    unb64(envelope.thread, 16);
    const teamPk = unb64(envelope.team, 32);
    const want = role === 'note' ? [kid(teamPk)] : [kid(teamPk), envelope.thread];
    const keys = envelope.keys;
    if (!Array.isArray(keys) || keys.length !== want.length) throw bad('wrong number of key boxes');
    keys.forEach((entry, i) => {
      if (!entry || typeof entry !== 'object' || Object.keys(entry).sort().join(',') !== 'box,kid') throw bad('each recipient has exactly kid and box');
      if (entry.kid !== want[i]) throw bad('the key boxes are for the team key, then the citizen key');
      unb64(entry.box, BOX_BYTES);
    });
    unb64(envelope.nonce, 24);
    const ct = unb64(envelope.ct);
    if (ct.length < PAD_BLOCK + 16 || (ct.length - 16) % PAD_BLOCK) throw bad('ct is not padded');
    return { role, seq, threadKid: envelope.thread, teamPk };
  }

  /**
   * Open and verify a v2 envelope expected at binding `b`: the plaintext object.
   * Errors as crypto/envelope2.py open_v2: parse, binding, wrong_key, authentication, parse.
   */
  function openV2(envelope, readerSk, b) {
    const h = headerV2(envelope);
    if (h.role !== b.role || h.seq !== b.seq || h.threadKid !== kid(b.citizenPk) || !same(h.teamPk, b.teamPk)) {
      throw fail('binding', 'this message belongs to another place in a conversation');
    }
    const sk = bytes(readerSk, 32);
    const pk = publicKey(sk);
    const entry = envelope.keys.find((e) => e.kid === kid(pk));
    if (!entry) throw fail('wrong_key', 'this message is not addressed to this key');
    const nonce = unb64(envelope.nonce, 24);
    let padded;
    let k = null;
    try {
      k = sodium.crypto_box_open_easy(unb64(entry.box), boxNonce(b, nonce, pk), senderPk(b), sk);
      padded = sodium.crypto_aead_xchacha20poly1305_ietf_decrypt(null, unb64(envelope.ct), aad(b), nonce, k);
    } catch {
      throw fail('authentication', 'the message is not authentic here');
    } finally {
      if (k) sodium.memzero(k);
    }
    let plaintext;
    try {
      plaintext = JSON.parse(strictUtf8.decode(sodium.unpad(padded, PAD_BLOCK)));
    } catch {
      throw fail('parse', 'the message content is malformed');
    }
    if (!plaintext || typeof plaintext !== 'object' || Array.isArray(plaintext) || typeof plaintext.text !== 'string') {
      throw fail('parse', 'the message content is malformed');
    }
    return plaintext;
  }

  const versionOf = (envelope) => (envelope && typeof envelope === 'object' && Number.isInteger(envelope.v) ? envelope.v : null);
  const bySeq = (messages) => [...messages].sort((a, b) => a.seq - b.seq);

  /** The pinned team pk: the `team` of the earliest citizen message that verifies with Z.sk, or null. */
  function citizenPin(messages, zSk) {
    const zPk = publicKey(bytes(zSk, 32));
    for (const m of bySeq(messages)) {
      if (m.from !== 'citizen' || versionOf(m.envelope) !== VERSION2) continue;
      try {
        const { teamPk } = headerV2(m.envelope);
        openV2(m.envelope, zSk, binding('citizen', m.seq, zPk, teamPk));
        return teamPk;
      } catch {
        // not authentic: look further
      }
    }
    return null;
  }

  /**
   * The citizen reader's rule (crypto/envelope2.py read_as_citizen): rows
   * [{seq, from, envelope}] → [{seq, from, verified, text|null}]. `openV1(envelope)`
   * opens a version 1 envelope (legacy threads only).
   */
  function readAsCitizen(messages, zSk, openV1) {
    const rows = bySeq(messages);
    const zPk = publicKey(bytes(zSk, 32));
    const pin = citizenPin(rows, zSk);
    const legacy = rows.every((m) => versionOf(m.envelope) !== VERSION2);
    return rows.map((m) => {
      let text = null;
      let verified = false;
      if (versionOf(m.envelope) === VERSION2 && pin && (m.from === 'citizen' || m.from === 'consultant')) {
        try {
          text = openV2(m.envelope, zSk, binding(m.from, m.seq, zPk, pin)).text;
          verified = true;
        } catch {
          text = null;
        }
      } else if (legacy && versionOf(m.envelope) === 1) {
        try {
          text = openV1(m.envelope, zSk).text;
        } catch {
          text = null;
        }
      }
      return { seq: m.seq, from: m.from, verified, text };
    });
  }

  /**
   * The team reader's rule (crypto/envelope2.py read_as_team): `teamSks` maps a
   * kid to a team secret key the reader holds. The pin is the `team` of the
   * earliest citizen message that verifies (made with Z for this thread);
   * consultant messages and notes verify only with that pinned key.
   * `notes` are [{envelope}] in display order.
   * → {pin: kid|null, messages: [{seq, from, verified, text}], notes: [{seq: 0, from: 'note', verified, text}]}
   */
  function readAsTeam(messages, notes, citizenPk, teamSks, openV1) {
    const rows = bySeq(messages);
    const zPk = bytes(citizenPk, 32);
    const skFor = (teamPk) => teamSks.get(kid(teamPk));
    let pin = null;
    for (const m of rows) {
      if (m.from !== 'citizen' || versionOf(m.envelope) !== VERSION2) continue;
      try {
        const { teamPk } = headerV2(m.envelope);
        if (!skFor(teamPk)) continue;
        openV2(m.envelope, skFor(teamPk), binding('citizen', m.seq, zPk, teamPk));
        pin = teamPk;
        break;
      } catch {
        // not authentic: look further
      }
    }
    const legacy = [...rows, ...notes].every((m) => versionOf(m.envelope) !== VERSION2);
    const one = (envelope, role, seq) => {
      if (versionOf(envelope) === VERSION2 && pin && ROLES.includes(role)) {
        try {
          return { verified: true, text: openV2(envelope, skFor(pin), binding(role, seq, zPk, pin)).text };
        } catch {
          return { verified: false, text: null };
        }
      }
      if (legacy && versionOf(envelope) === 1) {
        for (const entry of envelope.keys || []) {
          const sk = teamSks.get(entry.kid);
          if (!sk) continue;
          try {
            return { verified: false, text: openV1(envelope, sk).text };
          } catch {
            break;
          }
        }
      }
      return { verified: false, text: null };
    };
    return {
      pin: pin && kid(pin),
      messages: rows.map((m) => ({ seq: m.seq, from: m.from, ...one(m.envelope, m.from, m.seq) })),
      notes: notes.map((n) => ({ seq: 0, from: 'note', ...one(n.envelope, 'note', 0) })),
    };
  }

  return { binding, aad, boxNonce, sealV2, sealV2Json, headerV2, openV2, citizenPin, readAsCitizen, readAsTeam };
}
