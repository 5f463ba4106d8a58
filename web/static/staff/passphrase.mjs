// Passphrase rules a person can live with (NIST SP 800-63B style): length,
// not composition; refuse the passphrases attackers try first; a plain
// strength hint. The server never sees the passphrase, so this check lives
// here; a weak choice would only weaken that consultant's own key.

export const MIN_LENGTH = 12;
export const MAX_LENGTH = 256;

// Whole passphrases (lowercase, spaces and punctuation removed) that top the
// public lists of leaked passwords, at 12 characters or more.
const COMMON = new Set([
  '123456789012', '1234567890123', '12345678901234', '123456789123', '111111111111', '000000000000',
  '123123123123', '121212121212', '987654321098', 'passwordpassword', 'iloveyouiloveyou', 'qwertyqwerty',
  'qwertyuiopasdfghjkl', 'qwertyuiopasdfghjklzxcvbnm', 'asdfghjklasdfghjkl', '1q2w3e4r5t6y', '1q2w3e4r5t6y7u',
  '1qaz2wsx3edc', '1qaz2wsx3edc4rfv', 'zaq12wsxcde3', 'qazwsxedcrfv', 'qazwsxedcrfvtgb', 'zxcvbnmasdfghjkl',
  'correcthorsebatterystaple', 'thequickbrownfox', 'thequickbrownfoxjumpsoverthelazydog', 'letmeinletmein',
  'changemechangeme', 'administrator', 'administrator1', 'mypasswordis', 'thisismypassword', 'mysecretpassword',
  'supersecretpassword', 'verysecurepassword', 'strongpassword', 'secretpassword', 'newpassword123',
  'welcometothejungle', 'ihateyouihateyou', 'whateverwhatever', 'trustnoonetrustno1', 'jegelskerdig',
  'hemmeligkode', 'mitkodeord', 'detteermitkodeord', 'adgangskode', 'adgangskoden', 'kodeordkodeord',
]);

// Words that make a passphrase common when they are all there is, perhaps with
// digits before or after ("password2024", "sommer123456").
const COMMON_CORES = new Set([
  'password', 'passw0rd', 'passwort', 'qwerty', 'qwertyuiop', 'asdfgh', 'asdfghjkl', 'zxcvbnm', 'letmein', 'welcome',
  'iloveyou', 'admin', 'administrator', 'login', 'master', 'dragon', 'monkey', 'sunshine', 'princess', 'football',
  'baseball', 'soccer', 'superman', 'batman', 'trustno', 'shadow', 'michael', 'jennifer', 'abc', 'abcdef',
  'starwars', 'whatever', 'freedom', 'hello', 'helloworld', 'secret', 'changeme', 'fristed', 'inbox', 'consultant',
  'kodeord', 'adgangskode', 'hemmelig', 'sommer', 'vinter', 'foraar', 'efteraar', 'danmark', 'denmark', 'kobenhavn',
  'copenhagen', 'aarhus', 'odense', 'aalborg', 'summer', 'winter', 'spring', 'autumn', 'january', 'december',
  'pokemon', 'minecraft', 'liverpool', 'arsenal', 'chelsea', 'computer', 'internet', 'samsung', 'google',
]);

const SEQUENCES = [
  '01234567890123456789', '98765432109876543210', 'abcdefghijklmnopqrstuvwxyz', 'zyxwvutsrqponmlkjihgfedcba',
  'qwertyuiopasdfghjklzxcvbnm', 'qwertzuiopasdfghjklyxcvbnm', 'azertyuiopqsdfghjklmwxcvbn', '1qaz2wsx3edc4rfv5tgb6yhn7ujm',
];

function codePoints(text) {
  return [...text].length;
}

function simplified(passphrase) {
  return passphrase.normalize('NFKC').toLowerCase().replace(/[\s\p{P}\p{S}]+/gu, '');
}

/**
 * {ok, problem, score}: problem is '' or one of short, long, common,
 * username, repetitive; score 0 (refused) to 4 (very strong), by length.
 */
export function assessPassphrase(passphrase, username = '') {
  const text = String(passphrase).normalize('NFC');
  const length = codePoints(text);
  const refuse = (problem) => ({ ok: false, problem, score: 0 });
  if (length < MIN_LENGTH) return refuse('short');
  if (length > MAX_LENGTH) return refuse('long');
  const plain = simplified(text);
  const core = plain.replace(/^\d+/, '').replace(/\d+$/, '');
  if (COMMON.has(plain) || COMMON_CORES.has(core) || /^\d+$/.test(plain)) return refuse('common');
  if (plain.length >= 4 && SEQUENCES.some((row) => row.includes(plain))) return refuse('repetitive');
  if (/^(.{1,4})\1+$/u.test(plain) || new Set(plain).size <= 3) return refuse('repetitive');
  const name = simplified(String(username));
  if (name.length >= 3 && plain.includes(name) && plain.length - name.length < 8) return refuse('username');
  const words = text.trim().split(/[\s\-_.]+/u).filter(Boolean).length;
  let score = length >= 28 ? 4 : length >= 20 ? 3 : length >= 16 ? 2 : 1;
  if (words >= 4 && score < 4) score += 1;
  return { ok: true, problem: '', score };
}
