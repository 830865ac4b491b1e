// Joining with the class code and a name: the server answers with a session cookie, then the labs page.
/* global window */
import { byId, post } from './api.js';

const form = /** @type {HTMLFormElement} */ (byId('join'));
form.addEventListener('submit', async (e) => {
  e.preventDefault();
  const code = /** @type {HTMLInputElement} */ (byId('code')).value;
  const name = /** @type {HTMLInputElement} */ (byId('name')).value;
  const message = byId('message');
  message.textContent = '';
  if (!code.trim() || !name.trim()) {
    message.textContent = 'Both the class code and your name, please.';
    return;
  }
  try {
    await post('/api/join', { code, name });
    window.location.assign('/');
  } catch (err) {
    message.textContent = err instanceof Error ? err.message : String(err);
  }
});
byId('code').focus();
