/**
 * JSON fetch wrapper for the NeuralRP API. Errors come back as ApiError carrying the server's human
 * sentence in `detail` (from `{"error": Type, "detail": sentence}`), which is also shown as a toast
 * unless `quiet` is set. Network failures flip the global connection banner instead of toasting.
 */

import { reportOffline, reportOnline } from './connection.js';
import { toast } from './toast.js';

/** An API or network failure: `detail` is the human sentence, `status` is 0 when the server was unreachable. */
export class ApiError extends Error {
  constructor(detail, { status = 0, type = 'Error', body = null } = {}) {
    super(detail);
    this.name = 'ApiError';
    this.detail = detail;
    this.status = status;
    this.type = type;
    this.body = body;
  }
}

/** Path plus a query string built from an object (null/undefined values skipped, arrays repeated). */
export function withQuery(path, query) {
  if (!query) return path;
  const params = new URLSearchParams();
  for (const [key, value] of Object.entries(query)) {
    for (const item of [value].flat()) if (item !== null && item !== undefined) params.append(key, String(item));
  }
  const qs = params.toString();
  return qs ? `${path}${path.includes('?') ? '&' : '?'}${qs}` : path;
}

/** fetch() options: JSON-encode plain bodies, pass FormData/Blob through. */
function requestInit(method, body, headers, signal) {
  const init = { method, signal, credentials: 'same-origin', headers: { Accept: 'application/json', ...headers } };
  if (body instanceof FormData || body instanceof Blob || body instanceof URLSearchParams) init.body = body;
  else if (body !== undefined) {
    init.body = JSON.stringify(body);
    init.headers['Content-Type'] = 'application/json';
  }
  return init;
}

/** Parse a response body: JSON when labelled so, else text; empty -> null. */
async function readBody(response) {
  if (response.status === 204) return null;
  const text = await response.text();
  if (!text) return null;
  if ((response.headers.get('Content-Type') ?? '').includes('json')) {
    try { return JSON.parse(text); } catch { return text; }
  }
  return text;
}

/** The human sentence for a failed response: our `detail`, FastAPI validation lists, or the status line. */
export function errorDetail(status, statusText, body) {
  const detail = body && typeof body === 'object' ? body.detail : null;
  if (typeof detail === 'string' && detail) return detail;
  if (Array.isArray(detail) && detail.length) {
    return detail.map((d) => [(d.loc ?? []).slice(1).join('.'), d.msg].filter(Boolean).join(': ')).join('; ');
  }
  return `The server answered ${status}${statusText ? ` ${statusText}` : ''}.`;
}

/** An access token is needed (server exposed beyond loopback): open the login page, coming back here after. */
export function goToLogin() {
  const here = `${window.location.pathname}${window.location.search}${window.location.hash}`;
  window.location.assign(`/login.html?next=${encodeURIComponent(here)}`);
}

/**
 * Call the API: api('/api/x', {method, body, query, headers, signal, quiet}) -> parsed JSON (or text, or null).
 * A plain-object body is sent as JSON; FormData/Blob/URLSearchParams are sent as they are.
 * Throws ApiError; an AbortError from `signal` is rethrown untouched.
 */
export async function api(path, { method = 'GET', body, query, headers = {}, signal, quiet = false } = {}) {
  let response;
  try {
    response = await fetch(withQuery(path, query), requestInit(method, body, headers, signal));
  } catch (err) {
    if (err?.name === 'AbortError') throw err;
    reportOffline();
    throw new ApiError('Cannot reach the NeuralRP server. Is it still running?', { type: 'NetworkError' });
  }
  reportOnline();
  if (response.status === 401 && !path.startsWith('/api/auth/')) goToLogin();
  const data = await readBody(response);
  if (response.ok) return data;
  const error = new ApiError(errorDetail(response.status, response.statusText, data), {
    status: response.status, type: data?.error ?? 'HTTPError', body: data,
  });
  if (!quiet) toast(error.detail, { kind: 'error' });
  throw error;
}

/** GET path: get('/api/chats', {query: {q: 'x'}}). */
export const get = (path, options = {}) => api(path, { ...options, method: 'GET' });
/** POST a JSON (or FormData) body. */
export const post = (path, body, options = {}) => api(path, { ...options, method: 'POST', body });
/** PUT a JSON body. */
export const put = (path, body, options = {}) => api(path, { ...options, method: 'PUT', body });
/** PATCH a JSON body. */
export const patch = (path, body, options = {}) => api(path, { ...options, method: 'PATCH', body });
/** DELETE path. */
export const del = (path, options = {}) => api(path, { ...options, method: 'DELETE' });
