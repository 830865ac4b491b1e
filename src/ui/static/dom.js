// Small DOM helpers for the live page's modules: elements from plain data, never from HTML strings (a lab's text
// or an ss line must not become markup).
/* global document */

const SVG_NS = 'http://www.w3.org/2000/svg';

/**
 * An HTML element with attributes and children (strings become text).
 * @param {string} tag
 * @param {Record<string, string | number | boolean | undefined>} [attrs]
 * @param {(Node | string | undefined | null | false)[]} [children]
 * @returns {HTMLElement}
 */
export function h(tag, attrs = {}, children = []) {
  const el = document.createElement(tag);
  setAttrs(el, attrs);
  for (const c of children) if (c !== undefined && c !== null && c !== false) el.append(c);
  return el;
}

/**
 * An SVG element with attributes; `text` sets its text content.
 * @param {string} tag
 * @param {Record<string, string | number | boolean | undefined>} [attrs]
 * @param {string} [text]
 * @returns {SVGElement}
 */
export function s(tag, attrs = {}, text) {
  const el = /** @type {SVGElement} */ (document.createElementNS(SVG_NS, tag));
  setAttrs(el, attrs);
  if (text !== undefined) el.textContent = text;
  return el;
}

/**
 * @param {Element} el
 * @param {Record<string, string | number | boolean | undefined>} attrs
 */
function setAttrs(el, attrs) {
  for (const [k, v] of Object.entries(attrs)) {
    if (v === undefined || v === false) continue;
    el.setAttribute(k, v === true ? '' : String(v));
  }
}

/**
 * The element with this id (the page's skeleton has them all).
 * @param {string} id
 * @returns {HTMLElement}
 */
export function byId(id) {
  const el = document.getElementById(id);
  if (!el) throw new Error(`the page has no #${id}`);
  return el;
}
