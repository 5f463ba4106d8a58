import { b64 } from './fristed.mjs';

// What the key worker (kdf-worker.mjs) can be asked to do; the same table
// runs on the page when module workers are unavailable (kdf.mjs). Citizen
// pages seal and open here too, so libsodium loads once, in the worker only.

export function perform(api, kind, args) {
  switch (kind) {
    case 'warm':
      return {};
    case 'citizen':
      return api.deriveCitizen(...args);
    case 'staff':
      return api.deriveStaff(...args);
    case 'seal':
      return api.sealEnvelopeJson(...args);
    case 'pow':
      // [challenge, bits, ops, mem, budgetMs]: one short slice of proof of work (pow.mjs).
      return api.powSolveSome(...args);
    case 'sealV2': {
      // [plaintextJson, role, seq, citizenPk, teamPk, senderSk]: envelope version 2 (issue 11).
      const [json, role, seq, citizenPk, teamPk, senderSk] = args;
      return api.sealV2Json(json, api.binding(role, seq, citizenPk, teamPk), senderSk);
    }
    case 'readCitizen': {
      // [rows {seq, from, envelope}, Z.sk] → {pin: b64|null, shown: [{seq, from, verified, text}]}.
      const [rows, sk] = args;
      const pin = api.citizenPin(rows, sk);
      return { pin: pin ? b64(pin) : null, shown: api.readAsCitizen(rows, sk, api.openEnvelope) };
    }
    case 'openMany': {
      // One failure is one placeholder, never the whole conversation.
      const [envelopes, sk] = args;
      return envelopes.map((envelope) => {
        try {
          return { plaintext: api.openEnvelope(envelope, sk) };
        } catch (err) {
          return { error: err.code || 'parse' };
        }
      });
    }
    default:
      throw new Error(`unknown request ${kind}`);
  }
}

/** The ArrayBuffers of a result's Uint8Array fields, to move rather than copy them. */
export function transferables(result) {
  if (!result || typeof result !== 'object' || Array.isArray(result)) return [];
  return Object.values(result).filter((v) => v instanceof Uint8Array).map((v) => v.buffer);
}
