// xterm.js writes its own <style> elements (its theme, its cell sizes). The page's Content-Security-Policy lets
// styles in only from this server or with this page's nonce: give every <style> made from here on that nonce.
// Imported first by the pages that show terminals, before xterm.js.
/* global document */
const meta = /** @type {HTMLMetaElement | null} */ (document.querySelector('meta[name="style-nonce"]'));
const nonce = meta?.content ?? '';
const create = document.createElement.bind(document);
/** @type {any} */ (document).createElement = (/** @type {string} */ tag, /** @type {any} */ opts) => {
  const el = create(tag, opts);
  if (nonce && String(tag).toLowerCase() === 'style') el.setAttribute('nonce', nonce);
  return el;
};
