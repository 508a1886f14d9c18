/**
 * The inpainting dialog: paint a mask over an image (maskpaint.js), set the img2img parameters and send
 * POST /api/images/{id}/inpaint with the mask as a black/white PNG data URL of the image's natural size.
 * The result is announced (gallery and chat show it) and previewed; "Continue from result" paints on it next,
 * with the same mask.
 */

import { post } from '../api.js';
import { el, replace } from '../dom.js';
import { modalShell } from '../chat/summaries.js';
import { altText, announce, field, imageOptions, imgIcon, nameSelect, numberInput, readNumber, uid } from './common.js';
import { copyMask, createMaskPainter } from './maskpaint.js';
import { createProgress } from './progress.js';

const FILLS = [[0, 'Fill'], [1, 'Original'], [2, 'Latent noise'], [3, 'Latent nothing']];
/** Inpaint settings remembered while the page lives (the last ones used). */
const remembered = { denoising_strength: 0.75, mask_blur: 4, inpainting_fill: 1, inpaint_full_res: false,
  inpaint_full_res_padding: 32 };

/** A small toggle button with aria-pressed. */
function toggle(text, iconName, pressed, onClick) {
  return el('button', { type: 'button', class: 'btn btn-ghost btn-small inpaint-tool', 'aria-pressed': String(pressed),
    on: { click: onClick } }, imgIcon(iconName, { size: 16 }), el('span', {}, text));
}

/** The paint tools row: Brush / Eraser, size slider, Undo, Clear. */
function paintTools(painter) {
  const brush = toggle('Brush', 'brush', true, () => setMode('brush'));
  const eraser = toggle('Eraser', 'eraser', false, () => setMode('erase'));
  const size = el('input', { type: 'range', class: 'inpaint-size', id: uid('brush'), min: 2, max: 256, step: 1,
    value: String(painter.size()), on: { input: () => { painter.setSize(size.value); sizeOut.textContent = size.value; } } });
  const sizeOut = el('output', { class: 'inpaint-size-out', for: size.id }, String(painter.size()));
  const undo = toggle('Undo', 'undo', false, () => painter.undo());
  undo.removeAttribute('aria-pressed');
  undo.title = 'Undo the last stroke (Ctrl+Z)';
  const clear = toggle('Clear', 'trash', false, () => painter.clear());
  clear.removeAttribute('aria-pressed');
  /** Pick the brush or the eraser. */
  function setMode(mode) {
    painter.setMode(mode);
    brush.setAttribute('aria-pressed', String(mode === 'brush'));
    eraser.setAttribute('aria-pressed', String(mode === 'erase'));
  }
  const node = el('div', { class: 'inpaint-tools', role: 'toolbar', 'aria-label': 'Mask tools' },
    el('div', { class: 'inpaint-modes', role: 'group', 'aria-label': 'Paint mode' }, brush, eraser),
    el('label', { class: 'inpaint-size-label', for: size.id }, 'Brush size'), size, sizeOut, undo, clear);
  return {
    node,
    /** Reflect the painter's state on the buttons and the slider. */
    sync() {
      undo.disabled = !painter.canUndo();
      clear.disabled = painter.isEmpty();
      size.value = String(painter.size());
      sizeOut.textContent = String(painter.size());
    },
  };
}

/** The img2img parameter controls for `image`; returns {node, body()}. */
function paramControls(image, options) {
  const defaults = options.defaults ?? {};
  const prompt = el('textarea', { class: 'input', rows: 3, name: 'prompt', value: image.prompt ?? '' });
  const negative = el('textarea', { class: 'input', rows: 2, name: 'negative_prompt',
    value: image.negative_prompt ?? '' });
  const denoise = numberInput(remembered.denoising_strength, { min: 0, max: 1, step: 0.05, name: 'denoising_strength' });
  const blur = numberInput(remembered.mask_blur, { min: 0, max: 64, step: 1, name: 'mask_blur' });
  const fill = el('select', { class: 'input', name: 'inpainting_fill' },
    FILLS.map(([v, label]) => el('option', { value: String(v), selected: v === remembered.inpainting_fill }, label)));
  const area = el('select', { class: 'input', name: 'inpaint_area' },
    el('option', { value: 'whole', selected: !remembered.inpaint_full_res }, 'Whole picture'),
    el('option', { value: 'masked', selected: remembered.inpaint_full_res }, 'Only masked'));
  const padding = numberInput(remembered.inpaint_full_res_padding, { min: 0, max: 256, step: 4, name: 'padding' });
  const steps = numberInput(image.steps ?? defaults.steps, { min: 1, max: 150, step: 1, name: 'steps' });
  const cfg = numberInput(image.cfg_scale ?? defaults.cfg_scale, { min: 1, max: 30, step: 0.5, name: 'cfg_scale' });
  const sampler = nameSelect(options.samplers, image.sampler ?? defaults.sampler_name,
    { name: 'sampler_name', defaultLabel: 'Server default' });
  const seed = numberInput(-1, { step: 1, name: 'seed' });
  const node = el('div', { class: 'inpaint-params' },
    field('Prompt', prompt, { className: 'img-field-wide' }),
    field('Negative prompt', negative, { className: 'img-field-wide' }),
    field('Denoising strength', denoise, { hint: '0 keeps the image, 1 repaints freely.' }),
    field('Mask blur', blur),
    field('Masked content', fill),
    field('Inpaint area', area),
    field('Only-masked padding', padding, { hint: 'Pixels around the mask when painting only the masked area.' }),
    field('Steps', steps), field('CFG scale', cfg), field('Sampler', sampler),
    field('Seed', seed, { hint: '-1 picks a random seed.' }));
  return {
    node,
    /** The request body (without the mask); remembers the inpaint settings. */
    body() {
      Object.assign(remembered, {
        denoising_strength: readNumber(denoise) ?? 0.75, mask_blur: readNumber(blur) ?? 4,
        inpainting_fill: Number(fill.value), inpaint_full_res: area.value === 'masked',
        inpaint_full_res_padding: readNumber(padding) ?? 32,
      });
      return { prompt: prompt.value, negative_prompt: negative.value, ...remembered, steps: readNumber(steps),
        cfg_scale: readNumber(cfg), sampler_name: sampler.value || undefined, seed: readNumber(seed) ?? -1 };
    },
  };
}

/** Open the inpaint dialog on `image` (ImageOut). onResult(image) runs for every result. Resolves when closed. */
export function openInpaint(image, { onResult = () => {} } = {}) {
  return new Promise((resolve) => {
    let source = image;
    let busy = false;
    const painter = createMaskPainter({ onChange: () => tools.sync() });
    const tools = paintTools(painter);
    const progress = createProgress({ label: 'Inpainting' });
    const params = el('div', { class: 'inpaint-params-box' }, el('p', { class: 'field-hint' }, 'Loading options…'));
    const result = el('div', { class: 'inpaint-result', 'aria-live': 'polite' });
    const send = el('button', { type: 'button', class: 'btn btn-primary', on: { click: () => submit() } },
      imgIcon('brush', { size: 17 }), el('span', {}, 'Inpaint'));
    let controls = null;
    const shell = modalShell({
      title: 'Inpaint', className: 'inpaint-dialog',
      body: [el('div', { class: 'inpaint-layout' },
        el('div', { class: 'inpaint-canvas-col' }, tools.node, painter.node,
          el('p', { class: 'field-hint' }, 'Paint over what should change (red). Ctrl+Z undoes a stroke.')),
        el('div', { class: 'inpaint-side' }, params, result)), progress.node],
      foot: [el('button', { type: 'button', class: 'btn btn-ghost', on: { click: () => shell.dialog.close() } },
        'Close'), send],
      onClose: () => { window.removeEventListener('hashchange', leave); resolve(); },
    });
    const leave = () => shell.dialog.close();
    window.addEventListener('hashchange', leave);
    shell.dialog.addEventListener('keydown', (event) => {
      const typing = event.target.closest?.('textarea, input:not([type=range]), select');
      if ((event.ctrlKey || event.metaKey) && event.key.toLowerCase() === 'z' && !typing) {
        event.preventDefault();
        painter.undo();
      }
    });

    /** Paint on `next` from now on. */
    async function useImage(next) {
      source = next;
      send.disabled = true;
      try {
        await painter.load(next);
        send.disabled = false;
      } catch {
        shell.showError('The image could not be loaded for painting.');
      }
    }

    /** Send the inpaint request and show the result. */
    async function submit() {
      if (busy || !controls) return;
      if (painter.isEmpty()) {
        shell.showError('Paint over the area to repaint first.');
        painter.mask.focus();
        return;
      }
      shell.showError(null);
      busy = true;
      send.disabled = true;
      const from = source;
      try {
        const body = { mask: painter.toDataUrl(), ...controls.body() };
        const made = await progress.track(post(`/api/images/${from.id}/inpaint`, body, { quiet: true }));
        copyMask(from.id, made.id);
        announce('created', made);
        onResult(made);
        showResult(made);
      } catch (err) {
        shell.showError(err?.detail ?? String(err));
      } finally {
        busy = false;
        send.disabled = false;
      }
    }

    /** The newest result with "Continue from result". */
    function showResult(made) {
      replace(result, el('h3', { class: 'inpaint-result-title' }, 'Result'),
        el('img', { class: 'inpaint-result-img', src: made.url, alt: altText(made) }),
        el('button', { type: 'button', class: 'btn btn-secondary btn-small',
          on: { click: () => { replace(result); useImage(made); } } }, 'Continue from result'));
    }

    document.body.append(shell.dialog);
    shell.dialog.showModal();
    useImage(image);
    imageOptions().then((options) => {
      controls = paramControls(image, options);
      replace(params, controls.node);
    });
  });
}
