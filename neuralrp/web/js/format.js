/** Formatting helpers for numbers, sizes and times shown in the UI. */

const UNITS = ['B', 'KiB', 'MiB', 'GiB', 'TiB', 'PiB'];
const integer = new Intl.NumberFormat('en-US');

/** Human-readable bytes with binary units: 1536 -> "1.5 KiB"; non-numbers -> "—". */
export function formatBytes(bytes) {
  if (typeof bytes !== 'number' || !Number.isFinite(bytes) || bytes < 0) return '—';
  let value = bytes;
  let unit = 0;
  while (value >= 1024 && unit < UNITS.length - 1) {
    value /= 1024;
    unit += 1;
  }
  const digits = unit === 0 || value >= 100 ? 0 : 1;
  return `${value.toFixed(digits)} ${UNITS[unit]}`;
}

/** A count with thousands separators: 12345 -> "12,345"; non-numbers -> "—". */
export function formatCount(n) {
  return typeof n === 'number' && Number.isFinite(n) ? integer.format(n) : '—';
}

/** A local wall-clock time such as "14:03:27". */
export function formatTime(date = new Date()) {
  return date.toLocaleTimeString([], { hour: '2-digit', minute: '2-digit', second: '2-digit' });
}

/** Any value as display text; null/undefined/'' -> "—". */
export function show(value) {
  return value === null || value === undefined || value === '' ? '—' : String(value);
}
