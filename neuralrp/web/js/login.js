/** The login page: POST the access token, then go back to the page that needed it (same-origin paths only). */

/** Where to go after logging in: `?next=` when it is a local path, else the app's root. */
export function nextTarget(search) {
  const next = new URLSearchParams(search).get('next') ?? '/';
  return next.startsWith('/') && !next.startsWith('//') && !next.startsWith('/\\') ? next : '/';
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
