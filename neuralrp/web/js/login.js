/** The login page: POST the access token, then go back to the page that needed it (same-origin paths only). */

/**
 * Where to go after logging in: `?next=` when it is a same-origin path, else the app's root. The value is
 * resolved by the browser's own URL parser first (it drops tabs, CR and LF and reads `\\` as `/`), so
 * `/%09/evil.example/` is judged as the `//evil.example/` the browser would open; a path that still starts
 * with `//` after resolving (`/.//host`) would be read as another host by location.assign, so it goes too.
 */
export function nextTarget(search, origin = window.location.origin) {
  const next = new URLSearchParams(search).get('next') ?? '/';
  if (!next.startsWith('/')) return '/';
  let url;
  try {
    url = new URL(next, origin);
  } catch {
    return '/';
  }
  if (url.origin !== origin || url.pathname.startsWith('//')) return '/';
  return url.pathname + url.search + url.hash;
}

/** Send the token; show the server's sentence when it is refused. */
async function submit(event) {
  event.preventDefault();
  const token = document.getElementById('login-token').value;
  const error = document.getElementById('login-error');
  const response = await fetch('/api/auth/login', {
    method: 'POST', credentials: 'same-origin',
    headers: { 'Content-Type': 'application/json', Accept: 'application/json' },
    body: JSON.stringify({ token }),
  });
  if (response.ok) {
    window.location.assign(nextTarget(window.location.search));
    return;
  }
  const body = await response.json().catch(() => null);
  error.textContent = body?.detail ?? `The server answered ${response.status}.`;
  error.hidden = false;
}

document.getElementById('login-form')?.addEventListener('submit', submit);
