// libsodium.js (sumo, for Argon2id) in the browser, served from our own
// origin by ops/setup.sh: a Promise of the ready `sodium` object.
import sodium from '/static/vendor/libsodium-wrappers.mjs';

export default sodium.ready.then(() => sodium);
