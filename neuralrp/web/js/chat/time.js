/** Time labels for the chat: "just now", "5 min ago", "Yesterday", "12 Mar"; clock times for messages. */

/** A Date from an ISO string, or null. */
function parse(iso) {
  const date = iso ? new Date(iso) : null;
  return date && !Number.isNaN(date.getTime()) ? date : null;
}

/** How long ago `iso` was, in words: "just now", "5 min ago", "3 h ago", "Yesterday", "12 Mar". */
export function timeAgo(iso, now = new Date()) {
  const date = parse(iso);
  if (!date) return '';
  const minutes = Math.floor((now - date) / 60000);
  if (minutes < 1) return 'just now';
  if (minutes < 60) return `${minutes} min ago`;
  if (minutes < 24 * 60 && date.getDate() === now.getDate()) return `${Math.floor(minutes / 60)} h ago`;
  const yesterday = new Date(now);
  yesterday.setDate(now.getDate() - 1);
  if (date.toDateString() === yesterday.toDateString()) return 'Yesterday';
  const sameYear = date.getFullYear() === now.getFullYear();
  return date.toLocaleDateString([], { day: 'numeric', month: 'short', year: sameYear ? undefined : 'numeric' });
}

/** A message timestamp: "14:03" today, "12 Mar, 14:03" otherwise. */
export function clock(iso, now = new Date()) {
  const date = parse(iso);
  if (!date) return '';
  const time = date.toLocaleTimeString([], { hour: '2-digit', minute: '2-digit' });
  if (date.toDateString() === now.toDateString()) return time;
  return `${date.toLocaleDateString([], { day: 'numeric', month: 'short' })}, ${time}`;
}
