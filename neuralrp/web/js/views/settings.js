/**
 * Settings view: the UI-editable settings (GET/PUT /api/settings) as labelled form fields in sections, then the
 * persona library (personas.js).
 * Save sends only the changed fields; a refused value shows the server's sentence and marks the field;
 * keys overridden here get a Reset button (DELETE /api/settings/{section}/{key}); Test connection asks
 * GET /api/llm/info what the saved LLM server is.
 */

import { del, get, put } from '../api.js';
import { actionButton, icon } from '../chat/icons.js';
import { el, replace } from '../dom.js';
import { show } from '../format.js';
import { toast } from '../toast.js';
import { card, errorState, facts, loading, pageHeader } from '../ui.js';
import { personaPanel } from '../personas.js';

const num = (label, extra = {}) => ({ label, type: 'number', step: 'any', ...extra });
const int = (label, extra = {}) => ({ label, type: 'number', step: 1, integer: true, ...extra });

const SECTIONS = [
  { key: 'llm', title: 'LLM server', icon: 'server', fields: {
    base_url: { label: 'Base URL', type: 'text', nullable: true, wide: true,
      placeholder: 'http://127.0.0.1:5001/v1',
      hint: 'KoboldCpp :5001, llama.cpp :8080, TabbyAPI :5000, Ollama :11434, or any OpenAI-compatible server.' },
    api_key: { label: 'API key', type: 'secret', hint: 'Leave blank to keep the current key.' },
    backend: { label: 'Backend', type: 'select', options: [['auto', 'Detect automatically'],
      ['koboldcpp', 'KoboldCpp'], ['llamacpp', 'llama.cpp server'], ['llamacpp_python', 'llama-cpp-python server'],
      ['tabbyapi', 'TabbyAPI'], ['ollama', 'Ollama'], ['openai', 'OpenAI-compatible']] },
    model: { label: 'Model', type: 'text', hint: 'Only needed when the server hosts several models.' },
    api_mode: { label: 'API mode', type: 'select', options: [['chat', 'Chat completions'],
      ['completion', 'Text completion']] },
    template: { label: 'Prompt template', type: 'select', hint: 'Used in text-completion mode.',
      options: [['chatml', 'ChatML'], ['llama3', 'Llama 3'], ['mistral', 'Mistral'], ['alpaca', 'Alpaca']] },
    timeout_s: num('Timeout (seconds)', { min: 1 }),
    keep_incomplete: { label: 'Keep incomplete replies', type: 'checkbox',
      hint: 'When a reply breaks off, keep its text (marked incomplete) instead of dropping it.' },
    thinking: { label: 'Let thinking models think', type: 'checkbox',
      hint: 'Off: Qwen3, DeepSeek-R1 and the like answer directly. Their thinking is never shown as the reply and uses up max tokens.' },
  } },
  { key: 'sampling', title: 'Sampling', icon: 'sparkle', fields: {
    temperature: num('Temperature', { min: 0, max: 10 }),
    top_p: num('Top P', { min: 0, max: 1 }),
    top_k: int('Top K', { min: 0 }),
    min_p: num('Min P', { min: 0, max: 1 }),
    repetition_penalty: num('Repetition penalty', { min: 0 }),
    max_tokens: int('Max tokens per reply', { min: 1 }),
    stop: { label: 'Stop strings', type: 'lines', wide: true, hint: 'One per line; write \\n for a line break.' },
  } },
  { key: 'context', title: 'Context', icon: 'database', fields: {
    max_tokens: int('Context size (tokens)', { min: 512,
      hint: 'Used when the server does not report its own; Ollama is asked for this window.' }),
    absence_turns: int('Absence turns', { min: 1, hint: 'Turns without a character before it leaves the scene.' }),
    summarize_at: num('Summarize at', { min: 0, max: 1, hint: 'Fraction of the context that triggers a summary.' }),
    keep_recent_turns: int('Recent turns kept verbatim', { min: 1 }),
    summary_word_limit: int('Summary word limit', { min: 100 }),
  } },
  { key: 'world', title: 'World', icon: 'library', fields: {
    canon_law_every: int('Canon law every N turns', { min: 1 }),
    lore_token_budget: int('Lore token budget', { min: 0 }),
    semantic_threshold: num('Semantic match threshold', { min: -1, max: 1 }),
    active_worlds: { label: 'Global worlds', type: 'multi', wide: true,
      hint: 'Used by every chat, besides its own worlds and its characters\' (Ctrl-click to pick several).' },
  } },
  { key: 'chats', title: 'Chats', icon: 'chat', fields: {
    system_prompt: { label: 'System prompt', type: 'textarea', wide: true,
      hint: 'Empty: the built-in prompt (shown in the empty box). {{char}} and {{user}} are replaced. A card\'s '
        + 'own system prompt replaces it when that character chats alone ({{original}} there puts this one in).' },
    auto_replies: int('Auto mode: characters answering in turn', { min: 1, max: 10,
      hint: 'How many of the characters you name in a message answer it, one after the other.' }),
    greetings: { label: 'Greetings at chat start', type: 'select',
      options: [['all', 'Every member\'s, in cast order'], ['first', 'The first member\'s only']] },
  } },
  { key: 'images', title: 'Images', icon: 'images', fields: {
    base_url: { label: 'Image server URL', type: 'text', nullable: true, wide: true,
      placeholder: 'http://127.0.0.1:7860',
      hint: 'AUTOMATIC1111 / Forge / SD.Next started with --api (:7860), or KoboldCpp with an image model (:5001).' },
    username: { label: 'Image server user', type: 'text', nullable: true,
      hint: 'For a webui started with --api-auth user:password; leave empty otherwise.' },
    password: { label: 'Image server password', type: 'secret', hint: 'Leave blank to keep the current password.' },
    timeout_s: num('Image timeout (seconds)', { min: 1 }),
    steps: int('Steps', { min: 1, max: 150 }),
    cfg_scale: num('CFG scale', { min: 1, max: 30 }),
    sampler: { label: 'Sampler', type: 'text' },
    scheduler: { label: 'Scheduler', type: 'text' },
    width: int('Width', { min: 64, max: 4096 }),
    height: int('Height', { min: 64, max: 4096 }),
    quality_tags: { label: 'Quality tags', type: 'text', wide: true },
    negative_prompt: { label: 'Negative prompt', type: 'text', wide: true },
    presets_enabled: { label: 'Performance presets', type: 'checkbox',
      hint: 'Lower steps and size when the chat context is large, so both models fit in graphics memory.' },
    large_context_tokens: int('Large context from (tokens)', { min: 0 }),
    vram_gb: { label: 'Graphics card memory', type: 'select',
      options: [['8', '8 GB'], ['12', '12 GB'], ['16', '16 GB or more']], numeric: true },
    user_in_shot: { label: 'Put me in snapshots', type: 'checkbox' },
    user_gender: { label: 'My gender', type: 'select',
      options: [['', 'Not set'], ['female', 'Female'], ['male', 'Male'], ['other', 'Other']] },
    user_tags: { label: 'My visual tags', type: 'text', wide: true, hint: 'Danbooru tags, comma-separated.' },
  } },
];

/** Stop strings <-> textarea lines (a newline inside a string is written \n). */
const linesToText = (list) => (list ?? []).map((s) => s.replace(/\\/g, '\\\\').replace(/\n/g, '\\n')).join('\n');
const textToLines = (text) => text.split('\n').filter((s) => s !== '')
  .map((s) => s.replace(/\\(n|\\)/g, (_, c) => (c === 'n' ? '\n' : '\\')));

/** The form control for one field. */
function control(id, spec) {
  if (spec.type === 'select') {
    return el('select', { id, class: 'input' }, spec.options.map(([value, text]) => el('option', { value }, text)));
  }
  if (spec.type === 'checkbox') return el('input', { id, type: 'checkbox', class: 'switch' });
  if (spec.type === 'lines') return el('textarea', { id, class: 'input mono', rows: 3, spellcheck: 'false' });
  if (spec.type === 'textarea') return el('textarea', { id, class: 'input', rows: 5 });
  if (spec.type === 'multi') return el('select', { id, class: 'input', multiple: true, size: 5 });
  const type = spec.type === 'secret' ? 'password' : spec.type;
  return el('input', { id, class: 'input', type, step: spec.step, min: spec.min, max: spec.max,
    placeholder: spec.placeholder, autocomplete: spec.type === 'secret' ? 'new-password' : 'off',
    inputmode: spec.type === 'number' ? 'decimal' : undefined, spellcheck: 'false' });
}

/** Choose these values in a multiple select, adding an option for any it lacks (a name not in the library). */
function fillMulti(input, values, names = []) {
  const have = new Set([...input.options].map((o) => o.value));
  for (const name of [...names, ...values]) {
    if (!have.has(name)) { input.append(el('option', { value: name }, name)); have.add(name); }
  }
  for (const option of input.options) option.selected = values.includes(option.value);
}

/** Put a stored value into a control. */
function fill(input, spec, value) {
  if (spec.type === 'checkbox') input.checked = Boolean(value);
  else if (spec.type === 'lines') input.value = linesToText(value);
  else if (spec.type === 'multi') fillMulti(input, value ?? []);
  else if (spec.type === 'secret') {
    input.value = '';
    input.placeholder = value ? 'A key is saved (hidden)' : 'No key set';
  } else input.value = value === null || value === undefined ? '' : String(value);
}

/** The value a control holds now, in the API's type. */
function read(input, spec) {
  if (spec.type === 'checkbox') return input.checked;
  if (spec.numeric) return Number(input.value);
  if (spec.type === 'lines') return textToLines(input.value);
  if (spec.type === 'multi') return [...input.selectedOptions].map((o) => o.value);
  if (spec.type === 'number') return input.value.trim() === '' ? null : Number(input.value);
  if (spec.type === 'text' && spec.nullable) return input.value.trim() || null;
  return input.value;
}

/** True when the control differs from the stored value (a secret: when anything was typed). */
function changed(input, spec, stored) {
  if (spec.type === 'secret') return input.value !== '';
  return JSON.stringify(read(input, spec)) !== JSON.stringify(stored);
}

/**
 * When NeuralRP runs its own model (--model / --demo), say so at the top of the LLM section with its address:
 * the server settings there only apply when NeuralRP starts without it.
 */
function builtInNotice(builtIn) {
  if (!builtIn?.built_in) return null;
  const what = builtIn.label || (builtIn.model_path ?? '').split(/[\\/]/).pop() || 'a local model';
  return el('div', { class: 'builtin-note', role: 'note' }, icon('sparkle', { size: 18 }),
    el('div', { class: 'builtin-text' },
      el('p', { class: 'builtin-title' }, `The built-in model is in use: ${what}`),
      el('p', {}, 'NeuralRP started it itself (--model) and sends every reply to ',
        el('code', {}, builtIn.url ?? '—'),
        '. The server settings below apply when NeuralRP is started without --model.')));
}

/** The form: fields, override markers, save/reset/test logic. */
function settingsForm(doc, signal) {
  let state = doc;
  const fields = []; // {section, key, spec, input, wrap, reset}
  const formError = el('p', { class: 'form-error', id: 'settings-error', role: 'alert', hidden: true });
  const saved = el('p', { class: 'save-note', role: 'status' });
  const save = actionButton('Save', { variant: 'primary', icon: 'check', type: 'submit' });
  const testResult = el('div', { class: 'conn-test', 'aria-live': 'polite' });
  const test = actionButton('Test connection', { icon: 'plug', onClick: () => testConnection() });

  /** One labelled field with its reset control. */
  function fieldNode(section, key, spec) {
    const id = `set-${section}-${key}`;
    const input = control(id, spec);
    const path = `${section}.${key}`;
    // Named "Reset" and described by the field's label: an aria-label holding the label would make
    // get_by_label('Temperature') find the button too.
    const reset = el('button', { type: 'button', class: 'reset-btn', 'aria-describedby': `${id}-label`,
      title: 'Use the value from config.yaml again', on: { click: () => resetKey(section, key) } },
    icon('undo', { size: 14 }), el('span', {}, 'Reset'));
    const hint = spec.hint && el('p', { class: 'field-hint', id: `${id}-hint` }, spec.hint);
    if (hint) input.setAttribute('aria-describedby', `${id}-hint`);
    const label = el('label', { for: id, id: `${id}-label`, class: 'field-label' }, spec.label);
    const labelRow = el('div', { class: 'field-label-row' }, label,
      el('span', { class: 'override-tag', title: 'Saved here, over config.yaml' }, 'set here'), reset);
    const wrap = spec.type === 'checkbox'
      ? el('div', { class: 'field field-check', dataset: { key: path } }, input, el('div', {}, labelRow, hint))
      : el('div', { class: ['field', spec.wide && 'field-wide'], dataset: { key: path } },
        labelRow, input, hint);
    fields.push({ section, key, path, spec, input, wrap, reset });
    return wrap;
  }

  /** Show the document's values (keeping unsaved edits unless `force`) and override markers. */
  function apply(next, { force = false } = {}) {
    for (const f of fields) {
      const old = state.values[f.section]?.[f.key];
      if (force || !changed(f.input, f.spec, old)) fill(f.input, f.spec, next.values[f.section]?.[f.key]);
      const overridden = next.overridden.includes(f.path);
      f.reset.hidden = !overridden;
      f.wrap.classList.toggle('is-overridden', overridden);
    }
    state = next;
  }

  /** Show (or clear) the refusal sentence and mark the field it names. */
  function showError(detail) {
    formError.hidden = !detail;
    replace(formError, detail ? [icon('alert', { size: 16 }), el('span', {}, detail)] : []);
    const named = /'(\w+)\.(\w+)'/.exec(detail ?? '');
    for (const f of fields) {
      const bad = Boolean(named) && f.path === `${named[1]}.${named[2]}`;
      f.wrap.classList.toggle('has-error', bad);
      if (bad) f.input.setAttribute('aria-invalid', 'true');
      else f.input.removeAttribute('aria-invalid');
    }
    const bad = named && fields.find((f) => f.path === `${named[1]}.${named[2]}`);
    if (bad) {
      bad.input.scrollIntoView({ block: 'center' }); // clear of the sticky Save bar
      bad.input.focus({ preventScroll: true });
    }
  }

  /** PUT the changed fields. */
  async function submit() {
    const patch = {};
    for (const f of fields) {
      if (!changed(f.input, f.spec, state.values[f.section]?.[f.key])) continue;
      (patch[f.section] ??= {})[f.key] = read(f.input, f.spec);
    }
    showError(null);
    saved.textContent = '';
    if (!Object.keys(patch).length) { saved.textContent = 'Nothing to save.'; return; }
    save.disabled = true;
    try {
      apply(await put('/api/settings', patch, { signal, quiet: true }), { force: true });
      saved.textContent = 'Saved. New replies use these settings.';
    } catch (err) {
      if (err?.name !== 'AbortError') showError(err?.detail ?? String(err));
    } finally {
      save.disabled = false;
    }
  }

  /** Drop one UI override. */
  async function resetKey(section, key) {
    try {
      const next = await del(`/api/settings/${section}/${key}`, { signal, quiet: true });
      const f = fields.find((x) => x.section === section && x.key === key);
      fill(f.input, f.spec, next.values[section][key]);
      apply(next);
      toast(`${f.spec.label} uses the config file's value again.`, { kind: 'success' });
      f.input.focus();
    } catch (err) {
      if (err?.name !== 'AbortError') showError(err?.detail ?? String(err));
    }
  }

  /** Ask the saved LLM server what it is. */
  async function testConnection() {
    test.disabled = true;
    replace(testResult, el('p', { class: 'muted small' }, 'Asking the LLM server…'));
    const unsaved = fields.some((f) => f.section === 'llm' && changed(f.input, f.spec, state.values.llm[f.key]));
    try {
      const info = await get('/api/llm/info', { signal, quiet: true });
      if (!info.configured) throw Object.assign(new Error(info.detail), { detail: info.detail });
      replace(testResult, el('div', { class: 'conn-ok' },
        el('p', { class: 'conn-test-title' }, icon('check', { size: 16 }), el('span', {}, 'The LLM server answered.')),
        facts([['Kind', show(info.kind)], ['Model', show(info.model)],
          ['Context length', info.context_length ? `${info.context_length.toLocaleString('en-US')} tokens` : '—']])));
    } catch (err) {
      if (err?.name === 'AbortError') return;
      replace(testResult, el('p', { class: 'conn-bad', role: 'alert' }, icon('alert', { size: 16 }),
        el('span', {}, err?.detail ?? String(err))));
    } finally {
      test.disabled = false;
      const note = 'This tested the saved settings: save to test your changes.';
      if (unsaved) testResult.append(el('p', { class: 'muted small' }, note));
    }
  }

  const builtIn = doc.built_in?.built_in ? doc.built_in : null;
  const sections = SECTIONS.map((s) => card({ title: s.title, icon: s.icon, className: 'settings-card' },
    s.key === 'llm' && builtInNotice(builtIn),
    el('div', { class: 'field-grid' }, Object.entries(s.fields).map(([key, spec]) => fieldNode(s.key, key, spec))),
    s.key === 'llm' && el('div', { class: 'conn-test-row' }, test, testResult)));

  const form = el('form', { class: 'settings-form', novalidate: true,
    on: { submit: (event) => { event.preventDefault(); submit(); } } },
  sections,
  el('div', { class: 'settings-actions' }, el('div', { class: 'settings-status' }, formError, saved), save));
  apply(doc, { force: true });
  const worldsField = fields.find((f) => f.path === 'world.active_worlds');
  get('/api/worlds', { signal, quiet: true }).then((worlds) => {
    const names = (worlds ?? []).map((w) => w.name);
    if (worldsField) fillMulti(worldsField.input, read(worldsField.input, worldsField.spec), names);
  }).catch(() => {}); // the saved names stay listed
  const systemField = fields.find((f) => f.path === 'chats.system_prompt');
  if (systemField) systemField.input.placeholder = doc.default_system_prompt ?? '';
  const baseUrl = fields.find((f) => f.path === 'llm.base_url');
  if (builtIn && baseUrl) baseUrl.input.placeholder = `${builtIn.url ?? ''} (built-in model)`;
  return form;
}

export default {
  name: 'settings',
  title: 'Settings',
  /** Render the settings view and load the values. */
  render(root, ctx) {
    const body = el('div', { class: 'settings-body' }, loading('Loading settings…'));
    root.append(pageHeader({
      title: 'Settings',
      subtitle: 'Backends and generation. Saved here, on top of config.yaml; new replies use them at once.',
    }), body);

    /** Fetch the settings document and show the form (or the error with a retry). */
    async function load() {
      try {
        const doc = await get('/api/settings', { signal: ctx.signal, quiet: true });
        if (!ctx.signal.aborted) replace(body, settingsForm(doc, ctx.signal), personaPanel({ signal: ctx.signal }));
      } catch (err) {
        if (!ctx.signal.aborted && err?.name !== 'AbortError') {
          replace(body, errorState(err?.detail ?? String(err), { retry: load }));
        }
      }
    }
    load();
  },
};
