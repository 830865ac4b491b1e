// Joining with the class code and a name: the server answers with a session cookie, then the labs page.
/* global window */
import { byId, post } from './api.js';

const form = /** @type {HTMLFormElement} */ (byId('join'));
const code = /** @type {HTMLInputElement} */ (byId('code'));
const name = /** @type {HTMLInputElement} */ (byId('name'));
const message = byId('message');
const go = /** @type {HTMLButtonElement} */ (byId('join-go'));

/**
 * What went wrong, said where the student looks (under the form, read out as an alert), with the field to fix
 * marked and focused.
 * @param {string} text
 * @param {HTMLInputElement} [field]
 */
function fail(text, field) {
  message.textContent = text;
  message.hidden = false;
  for (const f of [code, name]) f.setAttribute('aria-invalid', String(f === field));
  field?.focus();
}

form.addEventListener('submit', async (e) => {
  e.preventDefault();
  message.hidden = true;
  message.textContent = '';
  if (!code.value.trim()) return fail('Type the class code your instructor gave you.', code);
  if (!name.value.trim()) return fail('Type your name, as your instructor should see it.', name);
  go.disabled = true;
  try {
    await post('/api/join', { code: code.value, name: name.value });
    window.location.assign('/');
  } catch (err) {
    const why = err instanceof Error ? err.message : String(err);
    // A fetch that could not reach the server at all says "Failed to fetch" (Chromium) or similar.
    if (err instanceof TypeError) fail(`Could not reach the class server (${why}). Check the address, then try again.`);
    else if (/not the class code/.test(why))
      fail(`Could not join: ${why}. Check the code with your instructor (letters and digits, no spaces).`, code);
    else fail(`Could not join: ${why}.`);
  } finally {
    go.disabled = false;
  }
});
code.focus();
