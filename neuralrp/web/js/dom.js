/**
 * Safe element building. Text only ever becomes text nodes (never parsed as HTML), inline `on*`
 * handler attributes are refused, and URL attributes refuse script-running schemes.
 * Card, lore and chat text is untrusted: always render it through these helpers.
 */

const SVG_NS = 'http://www.w3.org/2000/svg';
const URL_ATTRS = new Set(['href', 'src', 'action', 'formaction', 'poster', 'cite', 'background', 'ping',
  'xlink:href', 'data', 'codebase']);
const FORBIDDEN_ATTRS = new Set(['srcdoc', 'innerhtml', 'outerhtml']);
const FORBIDDEN_TAGS = new Set(['script', 'iframe', 'frame', 'object', 'embed', 'base']);
const PROPERTY_ATTRS = new Set(['value', 'checked', 'selected', 'indeterminate']);
const SAFE_DATA_URL = /^data:image\/(png|jpe?g|gif|webp|avif)[;,]/;

/** True when a URL would run script: javascript:, vbscript:, or a data: URL that is not a plain image. */
export function isUnsafeUrl(value) {
  // Browsers drop control characters and whitespace inside a scheme ("java\tscript:"), so do the same.
  const url = String(value).replace(/[\u0000-\u0020\u007f-\u009f]/g, '').toLowerCase();
  if (url.startsWith('javascript:') || url.startsWith('vbscript:')) return true;
  return url.startsWith('data:') && !SAFE_DATA_URL.test(url);
}

/** Append children: strings and numbers become text nodes, arrays are flattened, null/undefined/booleans skipped. */
export function append(node, ...children) {
  for (const child of children.flat(Infinity)) {
    if (child === null || child === undefined || typeof child === 'boolean') continue;
    if (child instanceof Node) node.appendChild(child);
    else if (typeof child === 'string' || typeof child === 'number' || typeof child === 'bigint') {
      node.appendChild(document.createTextNode(String(child)));
    } else throw new TypeError(`dom: cannot append a ${typeof child}`);
  }
  return node;
}

/** Remove every child of a node. */
export function clear(node) {
  node.replaceChildren();
  return node;
}

/** Replace every child of a node with the given children (same rules as append). */
export function replace(node, ...children) {
  return append(clear(node), ...children);
}

/** Set one attribute safely; see el() for the special keys. */
function setAttr(node, key, value) {
  const lower = key.toLowerCase();
  if (key === 'on') return listen(node, value);
  if (lower.startsWith('on')) throw new Error(`dom: inline handler attribute "${key}" refused; use {on: {event: fn}}`);
  if (FORBIDDEN_ATTRS.has(lower)) throw new Error(`dom: attribute "${key}" refused`);
  if (value === null || value === undefined || value === false) return;
  if (key === 'class' || key === 'className') return setClass(node, value);
  if (key === 'dataset') return Object.entries(value).forEach(([k, v]) => { node.dataset[k] = String(v); });
  if (key === 'style' && typeof value === 'object') {
    return Object.entries(value).forEach(([k, v]) => node.style.setProperty(k, String(v)));
  }
  if (PROPERTY_ATTRS.has(key) && key in node) { node[key] = value; return; }
  if (URL_ATTRS.has(lower) && isUnsafeUrl(value)) throw new Error(`dom: unsafe URL refused for "${key}"`);
  node.setAttribute(key, value === true ? '' : String(value));
}

/** Set `class` from a string or an array of names (falsy entries dropped). */
function setClass(node, value) {
  const names = Array.isArray(value) ? value.filter(Boolean).join(' ') : String(value);
  if (names) node.setAttribute('class', names);
}

/** Attach {event: listener} pairs with addEventListener. */
function listen(node, handlers) {
  for (const [type, fn] of Object.entries(handlers ?? {})) {
    if (typeof fn !== 'function') throw new TypeError(`dom: listener for "${type}" must be a function`);
    node.addEventListener(type, fn);
  }
}

/** Apply attrs then children to a freshly created node. */
function build(node, attrs, children) {
  for (const [key, value] of Object.entries(attrs ?? {})) setAttr(node, key, value);
  return append(node, ...children);
}

/**
 * Build an HTML element: el('button', {class: 'btn', type: 'button', on: {click: fn}}, 'Send').
 * attrs: plain attributes (true -> present, false/null -> absent), `class` (string or array),
 * `dataset` (object), `style` (object of CSS properties or string), `value`/`checked` (set as properties),
 * `on` ({event: listener}). Any other `on*` key, `srcdoc`, and javascript:/vbscript:/non-image data: URLs throw.
 */
export function el(tag, attrs = {}, ...children) {
  if (FORBIDDEN_TAGS.has(String(tag).toLowerCase())) throw new Error(`dom: <${tag}> refused`);
  return build(document.createElement(tag), attrs, children);
}

/** Build an SVG element with the same rules as el(): svg('path', {d: 'M0 0h4'}). */
export function svg(tag, attrs = {}, ...children) {
  if (FORBIDDEN_TAGS.has(String(tag).toLowerCase())) throw new Error(`dom: <${tag}> refused`);
  return build(document.createElementNS(SVG_NS, tag), attrs, children);
}
