// Markdown of bot, agent and system messages, rendered safely. marked parses it;
// raw HTML in it is shown as the text it is, never as markup; DOMPurify then keeps
// only the elements Markdown produces, and links and images only with web URLs.
// User text never comes here: it stays plain text.

import { Marked } from './vendor/marked-18.3.0.esm.js';
import DOMPurify from './vendor/dompurify-3.5.0.es.mjs';

const ESCAPES = { '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' };
const escapeHtml = (text) => text.replace(/[&<>"']/g, (c) => ESCAPES[c]);

const marked = new Marked({
  async: false,
  gfm: true,
  // Chat text breaks lines where its writer did, as the plain bubbles always have.
  breaks: true,
  renderer: {
    // Chat Markdown has no use for raw HTML, and a model that repeats a user's
    // `<img onerror=…>` must not make the page build it: it shows as text.
    html({ text }) {
      return escapeHtml(text);
    },
  },
});

// Whatever slipped through marked (a bug, a future option) meets this list: the
// elements and attributes Markdown produces, and nothing that runs or embeds.
const PURIFY = {
  ALLOWED_TAGS: [
    'a', 'blockquote', 'br', 'code', 'del', 'em', 'h1', 'h2', 'h3', 'h4', 'h5', 'h6', 'hr',
    'img', 'li', 'ol', 'p', 'pre', 'strong', 'table', 'tbody', 'td', 'th', 'thead', 'tr', 'ul',
  ],
  ALLOWED_ATTR: ['href', 'title', 'src', 'alt', 'start', 'align', 'class'],
  ALLOW_DATA_ATTR: false,
  RETURN_DOM_FRAGMENT: true,
};

const purify = DOMPurify(window);
purify.addHook('afterSanitizeAttributes', (node) => {
  if (node.tagName === 'A') {
    const href = absoluteUrl(node.getAttribute('href'), ['http:', 'https:', 'mailto:']);
    if (href) {
      node.setAttribute('href', href);
      node.setAttribute('target', '_blank');
      node.setAttribute('rel', 'noopener noreferrer');
    } else {
      node.removeAttribute('href');
    }
  } else if (node.tagName === 'IMG') {
    // Images load from https only, like attachments; another source leaves its alt
    // text (see `render`). Nothing is fetched before this check: DOMPurify works in a
    // document of its own.
    const src = absoluteUrl(node.getAttribute('src'), ['https:']);
    if (src) {
      node.setAttribute('src', src);
      node.setAttribute('loading', 'lazy');
      node.setAttribute('referrerpolicy', 'no-referrer');
    } else {
      node.removeAttribute('src');
    }
  } else if (node.tagName === 'PRE') {
    // A code block scrolls sideways; keyboard users scroll it once it takes focus.
    node.setAttribute('tabindex', '0');
  }
});

/** `url` when it is absolute with one of `protocols`, else null. */
function absoluteUrl(url, protocols) {
  if (!url) return null;
  try {
    const parsed = new URL(url);
    return protocols.includes(parsed.protocol) ? parsed.href : null;
  } catch {
    return null;
  }
}

/** Renders `text` as Markdown into `target`, replacing what it held. */
export function renderMarkdown(target, text) {
  const fragment = purify.sanitize(marked.parse(text).trim(), PURIFY);
  for (const image of fragment.querySelectorAll('img:not([src])')) {
    image.replaceWith(image.getAttribute('alt') ?? '');
  }
  target.replaceChildren(fragment);
}

const queued = new Map();

/**
 * Renders a reply that is still growing: at most once an animation frame, always
 * its newest text, into the same element, so that the bubble grows in place instead
 * of being rebuilt between paints. `then` runs after each render.
 */
export function renderMarkdownSoon(target, text, then) {
  const waiting = queued.has(target);
  queued.set(target, { text, then });
  if (waiting) return;
  requestAnimationFrame(() => {
    const latest = queued.get(target);
    queued.delete(target);
    if (!target.isConnected) return;
    renderMarkdown(target, latest.text);
    latest.then?.();
  });
}
