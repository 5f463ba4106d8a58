// The consultant's keys, in this page's memory only (never in any web
// storage): C.sk opened from key_blob, and the team secret keys opened from
// the grants. A reload, logout or the end of the session wipes them.
import { FristedCryptoError, b64, unb64 } from '/static/crypto/fristed.mjs';

export class Keyring {
  constructor(crypto, sodium) {
    this.crypto = crypto;
    this.sodium = sodium;
    this.username = '';
    this.teams = [];
    this.sk = null;
    this.pk = null;
    this.teamKeys = new Map(); // kid -> {team, sk, pk, current}
  }

  /**
   * Open key_blob with the kek derived from the passphrase, then every grant.
   * Throws FristedCryptoError('authentication') for a wrong passphrase.
   */
  unlock(kek, answer) {
    const sk = this.crypto.openKeyBlob(kek, unb64(answer.key_blob, 72));
    const pk = this.crypto.publicKey(sk);
    if (b64(pk) !== answer.pk) {
      this.sodium.memzero(sk);
      throw new FristedCryptoError('authentication', 'the key does not match this account');
    }
    this.wipe();
    this.username = answer.consultant.username;
    this.teams = answer.consultant.teams;
    this.sk = sk;
    this.pk = pk;
    this.addGrants(answer.grants);
  }

  /** Open grants (team secret keys sealed to C.pk); a box that does not match its kid is ignored. */
  addGrants(grants) {
    for (const grant of grants) {
      try {
        const teamSk = this.crypto.openBox(unb64(grant.box, 80), this.pk, this.sk);
        const teamPk = this.crypto.publicKey(teamSk);
        if (this.crypto.kid(teamPk) !== grant.kid) {
          this.sodium.memzero(teamSk);
          continue;
        }
        const old = this.teamKeys.get(grant.kid);
        if (old) this.sodium.memzero(old.sk);
        this.teamKeys.set(grant.kid, { team: grant.team, sk: teamSk, pk: teamPk, current: grant.current });
      } catch (err) {
        if (!(err instanceof FristedCryptoError)) throw err;
      }
    }
  }

  /** The team's current key {kid, pk} as far as this page knows, or null. */
  currentKey(team) {
    for (const [kid, key] of this.teamKeys) if (key.team === team && key.current) return { kid, pk: key.pk };
    return null;
  }

  /** Open an envelope with whichever team key it names; throws FristedCryptoError. */
  open(envelope, place = null) {
    // With `place` {citizenPk, seq, role} (a message or note of a thread, e.g. a preview) only a
    // version 2 envelope that verifies at that place opens (issue 11); version 1 never verifies.
    if (place) {
      if (!envelope || envelope.v !== 2) throw new FristedCryptoError('authentication', 'this message cannot be verified');
      const { teamPk } = this.crypto.headerV2(envelope);
      const key = this.teamKeys.get(this.crypto.kid(teamPk));
      if (!key) throw new FristedCryptoError('wrong_key', 'no key of this page opens this message');
      const seq = place.role === 'note' ? 0 : place.seq;
      return this.crypto.openV2(envelope, key.sk, this.crypto.binding(place.role, seq, place.citizenPk, teamPk));
    }
    for (const entry of envelope.keys || []) {
      const key = this.teamKeys.get(entry.kid);
      if (key) return this.crypto.openEnvelope(envelope, key.sk);
    }
    throw new FristedCryptoError('wrong_key', 'no key of this page opens this message');
  }

  get unlocked() {
    return this.sk !== null;
  }

  wipe() {
    if (this.sk) this.sodium.memzero(this.sk);
    for (const key of this.teamKeys.values()) this.sodium.memzero(key.sk);
    this.teamKeys.clear();
    this.sk = null;
    this.pk = null;
  }
}
