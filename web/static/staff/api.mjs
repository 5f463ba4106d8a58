// The staff JSON API from the browser: same-origin cookie session, the CSRF
// token (from the login answer, kept in page memory only) on every
// state-changing call, errors as ApiError {status, code, message, retryAfter}.

export class ApiError extends Error {
  constructor(status, code, message, retryAfter = 0) {
    super(message);
    this.name = 'ApiError';
    this.status = status;
    this.code = code;
    this.retryAfter = retryAfter;
  }
}

let csrf = '';
let onUnauthorized = null;

/** Remember the session's CSRF token (login answer) for later calls. */
export function setCsrf(token) {
  csrf = token || '';
}

/** Called once when any authenticated call answers 401 (the session ended). */
export function whenUnauthorized(callback) {
  onUnauthorized = callback;
}

/**
 * One API call. `background: true` marks automatic refreshes, which do not
 * count as activity for the idle timeout (X-Fristed-Background).
 */
export async function api(method, path, body = undefined, { background = false, session = true } = {}) {
  const headers = { Accept: 'application/json' };
  if (body !== undefined) headers['Content-Type'] = 'application/json';
  if (method !== 'GET' && csrf) headers['X-CSRF-Token'] = csrf;
  if (background) headers['X-Fristed-Background'] = '1';
  const response = await fetch(path, {
    method,
    headers,
    body: body === undefined ? undefined : JSON.stringify(body),
    credentials: 'same-origin',
    cache: 'no-store',
    redirect: 'error',
  });
  if (response.status === 204) return null;
  let data = null;
  try {
    data = await response.json();
  } catch {
    data = null;
  }
  if (!response.ok) {
    const error = (data && data.error) || {};
    const retryAfter = Number(response.headers.get('Retry-After') || 0);
    const failure = new ApiError(response.status, error.code || `http_${response.status}`, error.message || response.statusText, retryAfter);
    if (response.status === 401 && session && onUnauthorized) onUnauthorized(failure);
    throw failure;
  }
  return data;
}
