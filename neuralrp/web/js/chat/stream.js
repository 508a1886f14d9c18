/**
 * Server-sent events over a POST: fetch + ReadableStream + TextDecoder (EventSource can only GET).
 * postEvents() sends a JSON body and hands every `data:` payload (parsed JSON) to onEvent; when the server
 * answers with JSON instead of a stream (an error before any text, a 409...), that body is returned.
 * followEvents() follows a GET event stream (a running reply) with the browser's EventSource.
 */

import { ApiError, errorDetail } from '../api.js';
import { reportOffline, reportOnline } from '../connection.js';

/**
 * An incremental SSE parser: push(text) any slice of the stream, end() at EOF. onData(payload) gets each
 * event's data lines joined with '\n'. Lines may end in LF, CRLF or CR, split anywhere across chunks.
 */
export function sseParser(onData) {
  let buffer = '';
  let data = [];

  /** Handle one complete line. */
  function line(text) {
    if (text === '') {
      if (data.length) onData(data.join('\n'));
      data = [];
      return;
    }
    if (text.startsWith(':')) return; // comment / keep-alive ping
    const colon = text.indexOf(':');
    const field = colon < 0 ? text : text.slice(0, colon);
    let value = colon < 0 ? '' : text.slice(colon + 1);
    if (value.startsWith(' ')) value = value.slice(1);
    if (field === 'data') data.push(value);
  }

  return {
    /** Feed decoded text. */
    push(chunk) {
      buffer += chunk;
      const ends = /\r\n|\r|\n/g;
      let start = 0;
      let match;
      while ((match = ends.exec(buffer))) {
        if (match[0] === '\r' && match.index === buffer.length - 1) break; // maybe the first half of CRLF
        line(buffer.slice(start, match.index));
        start = ends.lastIndex;
      }
      buffer = buffer.slice(start);
    },
    /** The stream ended: flush a last line and a last event without a blank line. */
    end() {
      if (buffer) line(buffer.replace(/\r$/, ''));
      buffer = '';
      line('');
    },
  };
}

/** Read a text/event-stream body to its end, calling onEvent(json) per event (non-JSON payloads skipped). */
export async function readEvents(body, onEvent) {
  const reader = body.getReader();
  const decoder = new TextDecoder();
  const parser = sseParser((payload) => {
    let event;
    try { event = JSON.parse(payload); } catch { return; }
    onEvent(event);
  });
  for (;;) {
    const { value, done } = await reader.read();
    if (done) break;
    parser.push(decoder.decode(value, { stream: true }));
  }
  parser.push(decoder.decode());
  parser.end();
}

/**
 * POST `body` to `path`. A stream resolves to {streamed: true, status} after its last event; a JSON answer
 * resolves to {streamed: false, status, ok, body, detail}. A network failure throws ApiError (status 0);
 * an abort from `signal` throws the AbortError.
 */
export async function postEvents(path, body, { onEvent, signal } = {}) {
  let response;
  try {
    response = await fetch(path, {
      method: 'POST', signal, credentials: 'same-origin',
      headers: { Accept: 'text/event-stream, application/json', 'Content-Type': 'application/json' },
      body: JSON.stringify(body ?? {}),
    });
  } catch (err) {
    if (err?.name === 'AbortError') throw err;
    reportOffline();
    throw new ApiError('Cannot reach the NeuralRP server. Is it still running?', { type: 'NetworkError' });
  }
  reportOnline();
  const type = response.headers.get('Content-Type') ?? '';
  if (response.ok && type.includes('text/event-stream') && response.body) {
    await readEvents(response.body, onEvent ?? (() => {}));
    return { streamed: true, status: response.status };
  }
  const text = await response.text();
  let data = null;
  try { data = text ? JSON.parse(text) : null; } catch { data = text; }
  return {
    streamed: false, status: response.status, ok: response.ok, body: data,
    detail: response.ok ? null : errorDetail(response.status, response.statusText, data),
  };
}

/** Event types of a reply stream; the last three end it (a `done` with `more` is followed by the next reply). */
const REPLY_EVENTS = ['user', 'start', 'token', 'done', 'error', 'idle'];
const FINAL_EVENTS = new Set(['done', 'error', 'idle']);

/**
 * Follow GET `path` (GET /api/chats/{id}/stream) with an EventSource, calling onEvent(json) per event.
 * Resolves {ended: type} after done, error or idle, or {ended: null} when the stream cannot be read (or
 * `signal` aborts). A dropped connection is retried by the browser; the server then replays the reply
 * from its start, which the `start` event's message resets.
 */
export function followEvents(path, { onEvent, signal } = {}) {
  return new Promise((resolve) => {
    if (signal?.aborted) { resolve({ ended: null }); return; }
    const source = new EventSource(path);
    const finish = (ended) => {
      source.close();
      signal?.removeEventListener('abort', onAbort);
      resolve({ ended });
    };
    const onAbort = () => finish(null);
    signal?.addEventListener('abort', onAbort, { once: true });
    const deliver = (message) => {
      let event;
      try { event = JSON.parse(message.data); } catch { return; }
      onEvent?.(event);
      if (FINAL_EVENTS.has(event.type) && !event.more) finish(event.type); // done+more: another reply follows
    };
    for (const type of REPLY_EVENTS) {
      source.addEventListener(type, (message) => {
        // 'error' is also the EventSource's own connection error, which carries no data
        if (typeof message.data === 'string') deliver(message);
        else if (source.readyState === EventSource.CLOSED) finish(null);
      });
    }
  });
}
