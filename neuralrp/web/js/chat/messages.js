/**
 * The message log of one chat: message bubbles (speaker avatar and name, safe markup, status badge, swipe arrows
 * on the last reply, a per-message error line) in a scroll box that follows new text unless the user scrolled up.
 * The swipe arrows are always on the newest reply, SillyTavern style: "›" on its newest version asks for a new one.
 */

import { avatar } from '../avatar.js';
import { el, replace } from '../dom.js';
import { badge } from '../ui.js';
import { messageActions } from './edit.js';
import { icon } from './icons.js';
import { markup } from './markup.js';
import { clock } from './time.js';

const PIN_SLACK_PX = 48;

export { hue } from '../avatar.js';

/** The display name of a message's speaker. */
function speaker(msg) {
  if (msg.speaker_name) return msg.speaker_name;
  return msg.role === 'user' ? 'You' : msg.role === 'system' ? 'System' : 'Narrator';
}

/** The speaker's picture: pictureOf(msg) may give {url, hasAvatar}; else the initial tile. */
function speakerAvatar(msg, name, pictureOf) {
  const picture = pictureOf?.(msg) ?? null;
  return avatar({ name, url: picture?.url, hasAvatar: Boolean(picture?.hasAvatar), className: 'msg-avatar' });
}

/** The text of a message, or the typing dots for a reply with no text yet. */
function body(msg) {
  const streaming = msg.status === 'streaming';
  if (streaming && !msg.content) {
    return el('div', { class: 'msg-text is-typing', 'aria-label': 'Writing…' },
      el('span', { class: 'typing', 'aria-hidden': 'true' }, el('i'), el('i'), el('i')));
  }
  return el('div', { class: ['msg-text', streaming && 'is-streaming'] }, markup(msg.content));
}

/**
 * ‹ n/m › controls of the newest reply. onSwipe(msg, index) gets the version to show; on the newest version
 * "›" asks for index === count, which means "write a new version".
 */
function swipeControls(msg, { busy, onSwipe }) {
  const count = Math.max(msg.swipe_count ?? 0, 1);
  const index = Math.min(msg.swipe_index ?? 0, count - 1);
  const newest = index >= count - 1;
  const arrow = (dir, label, target, disabled) => el('button', {
    type: 'button', class: 'swipe-btn', 'aria-label': label, title: label, dataset: { dir },
    disabled: disabled || busy, on: { click: () => onSwipe(msg, target) },
  }, dir === 'prev' ? '‹' : '›');
  return el('div', { class: 'swipes', role: 'group', 'aria-label': 'Reply versions' },
    arrow('prev', 'Previous version', index - 1, index <= 0),
    el('span', { class: 'swipe-count' }, `${index + 1}/${count}`),
    arrow('next', newest ? 'Write a new version' : 'Next version', index + 1, false));
}

/** True when a message can show the swipe arrows (a finished reply). */
function swipeable(msg) {
  return msg.role === 'assistant' && msg.status !== 'streaming';
}

/** The inner parts of one message article. */
function messageParts(entry, { isLastReply, busy, onSwipe, actions, extras, pictureOf }) {
  const { msg, error, editor } = entry;
  const name = speaker(msg);
  return [
    speakerAvatar(msg, name, pictureOf),
    el('div', { class: 'msg-main' },
      el('header', { class: 'msg-head' },
        el('span', { class: 'msg-name' }, name),
        msg.status === 'incomplete' && badge('Incomplete', 'warn'),
        el('time', { class: 'msg-time', datetime: msg.created_at ?? '' }, clock(msg.created_at)),
        actions && !editor && msg.status !== 'streaming' && messageActions(msg, actions, { busy })),
      el('div', { class: ['msg-bubble', editor && 'is-editing'] }, editor ?? body(msg)),
      isLastReply && onSwipe && !editor && swipeable(msg) && swipeControls(msg, { busy, onSwipe }),
      extras?.(msg),
      error && el('p', { class: 'msg-error', role: 'alert' }, icon('alert', { size: 16 }), el('span', {}, error))),
  ];
}

/**
 * Create the log. onSwipe(message, index) is called by the swipe arrows; extras(message) may return a node shown
 * under the bubble (the message's images); pictureOf(message) may return {url, hasAvatar} for its speaker.
 * Returns the element and methods to change it: set, prepend, upsert, appendText, remove, setError, setBusy,
 * redraw, redrawAll, get, last, lastReply, lastOfRole, scrollToEnd.
 */
export function createMessageList({ onSwipe, header = null, actions = null, extras = null, pictureOf = null } = {}) {
  const items = el('div', { class: 'msg-items' });
  const empty = el('p', { class: 'msg-empty' }, 'No messages yet. Say hello.');
  const node = el('div', { class: 'messages', role: 'log', 'aria-label': 'Messages', tabindex: '0' },
    header, el('div', { class: 'msg-column' }, items, empty));
  const entries = new Map();
  let order = [];
  let busy = false;
  let pinned = true;

  node.addEventListener('scroll', () => {
    pinned = node.scrollHeight - node.scrollTop - node.clientHeight < PIN_SLACK_PX;
  }, { passive: true });
  // The log gets shorter when something above or below it grows (a notice over the composer, a banner, the
  // on-screen keyboard): stay on the newest line if the user was there.
  if (typeof ResizeObserver === 'function') {
    new ResizeObserver(() => { if (pinned) node.scrollTop = node.scrollHeight; }).observe(node);
  }

  /** Id of the last assistant message. */
  function lastReplyId() {
    for (let i = order.length - 1; i >= 0; i -= 1) {
      if (entries.get(order[i]).msg.role === 'assistant') return order[i];
    }
    return null;
  }

  /** Re-render one message in place, keeping focus on a swipe arrow that had it. */
  function draw(id) {
    const entry = entries.get(id);
    if (!entry) return;
    const focusedDir = entry.node.contains(document.activeElement) ? document.activeElement.dataset?.dir : null;
    const { msg } = entry;
    entry.node.className = ['msg', `msg-${msg.role}`, entry.error && 'has-error'].filter(Boolean).join(' ');
    entry.node.dataset.status = msg.status ?? 'complete';
    const isLastReply = id === lastReplyId() && order.at(-1) === id;
    replace(entry.node, messageParts(entry, { isLastReply, busy, onSwipe, actions, extras, pictureOf }));
    if (focusedDir) entry.node.querySelector(`.swipe-btn[data-dir="${focusedDir}"]:not([disabled])`)?.focus();
  }

  /** Run a DOM change, then keep following the bottom if the user was there. */
  function follow(change) {
    const stick = pinned;
    change();
    empty.hidden = order.length > 0;
    if (stick) scrollToEnd();
  }

  /** A new entry for msg (not yet in the DOM). */
  function entry(msg) {
    const made = { msg: { ...msg }, error: null, editor: null, node: el('article', { dataset: { id: msg.id, role: msg.role } }) };
    entries.set(msg.id, made);
    return made;
  }

  /** Scroll to the newest message. */
  function scrollToEnd() {
    node.scrollTop = node.scrollHeight;
    pinned = true;
  }

  /** Redraw the previous and the current last reply (swipe arrows move with it). */
  function redrawTail(previousLast) {
    const now = lastReplyId();
    if (previousLast !== null && previousLast !== now) draw(previousLast);
    if (now !== null) draw(now);
  }

  return {
    node,
    scrollToEnd,
    /** Replace every message. */
    set(messages) {
      follow(() => {
        entries.clear();
        order = [];
        replace(items, messages.map((m) => entry(m).node));
        order = messages.map((m) => m.id);
        order.forEach(draw);
      });
      scrollToEnd();
    },
    /** Add older messages above, keeping the view where it was. */
    prepend(messages) {
      const fresh = messages.filter((m) => !entries.has(m.id));
      const before = node.scrollHeight;
      items.prepend(...fresh.map((m) => entry(m).node));
      order = [...fresh.map((m) => m.id), ...order];
      fresh.forEach((m) => draw(m.id));
      node.scrollTop += node.scrollHeight - before;
    },
    /** Add a message at the end, or update the one with the same id. */
    upsert(msg) {
      if (!msg) return;
      follow(() => {
        const known = entries.get(msg.id);
        if (known) {
          Object.assign(known.msg, msg);
          draw(msg.id);
          return;
        }
        const previousLast = lastReplyId();
        items.append(entry(msg).node);
        order.push(msg.id);
        draw(msg.id);
        redrawTail(previousLast);
      });
    },
    /** Append streamed text to a message. */
    appendText(id, text) {
      const known = entries.get(id);
      if (!known || !text) return;
      follow(() => {
        known.msg.content = (known.msg.content ?? '') + text;
        const target = known.node.querySelector('.msg-text');
        if (target && !target.classList.contains('is-typing')) replace(target, markup(known.msg.content));
        else draw(id);
      });
    },
    /** Remove a message (e.g. a reply row that ended with no text). */
    remove(id) {
      const known = entries.get(id);
      if (!known) return;
      const previousLast = lastReplyId();
      known.node.remove();
      entries.delete(id);
      order = order.filter((x) => x !== id);
      empty.hidden = order.length > 0;
      redrawTail(previousLast);
    },
    /** Show (or clear, with null) the error line under a message. */
    setError(id, detail) {
      const known = entries.get(id);
      if (!known) return;
      follow(() => {
        known.error = detail || null;
        draw(id);
      });
    },
    /** Clear every error line. */
    clearErrors() {
      for (const [id, known] of entries) if (known.error) { known.error = null; draw(id); }
    },
    /** Draw every message again (the speakers' pictures changed); keeps following the bottom. */
    redrawAll() {
      follow(() => order.forEach((id) => { if (!entries.get(id).editor) draw(id); }));
    },
    /** Draw one message again (its extras changed); keeps following the bottom. */
    redraw(id) {
      if (entries.has(id) && !entries.get(id).editor) follow(() => draw(id));
    },
    /** While a reply is written the swipe arrows and message actions are disabled. */
    setBusy(flag) {
      busy = flag;
      node.setAttribute('aria-busy', flag ? 'true' : 'false');
      if (actions) order.forEach(draw);
      else if (lastReplyId() !== null) draw(lastReplyId());
    },
    /** Show `editor` (an element) in place of a message's text; null puts the text back. */
    setEditor(id, editor) {
      const known = entries.get(id);
      if (!known) return;
      known.editor = editor;
      draw(id);
    },
    /** The id of the shown message with this seq, or null. */
    findSeq(seq) {
      return order.find((id) => entries.get(id).msg.seq === seq) ?? null;
    },
    /** Scroll a message into the middle of the log and flash it briefly. */
    highlight(id) {
      const known = entries.get(id);
      if (!known) return;
      known.node.scrollIntoView({ block: 'center' });
      pinned = false;
      known.node.classList.remove('is-flash');
      void known.node.offsetWidth; // restart the animation
      known.node.classList.add('is-flash');
      known.node.dataset.flash = 'true';
      setTimeout(() => { known.node.classList.remove('is-flash'); }, 2400);
    },
    /** The message with this id (a copy), or null. */
    get(id) {
      const known = entries.get(id);
      return known ? { ...known.msg } : null;
    },
    /** The newest message, or null. */
    last() {
      return order.length ? { ...entries.get(order.at(-1)).msg } : null;
    },
    /** The newest assistant message, or null. */
    lastReply() {
      const id = lastReplyId();
      return id === null ? null : { ...entries.get(id).msg };
    },
    /** The newest message with this role ('user', 'assistant'), or null. */
    lastOfRole(role) {
      for (let i = order.length - 1; i >= 0; i -= 1) {
        const { msg } = entries.get(order[i]);
        if (msg.role === role) return { ...msg };
      }
      return null;
    },
    /** The oldest message, or null. */
    first() {
      return order.length ? { ...entries.get(order[0]).msg } : null;
    },
  };
}
