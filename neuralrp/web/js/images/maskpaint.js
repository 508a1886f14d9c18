/**
 * The inpainting mask painter: the image on a canvas, a mask canvas over it (painted areas show semi-transparent
 * red), pointer painting (mouse, pen, touch) with a brush or an eraser, undo and clear. Strokes are kept per image
 * id in memory (`maskFor`), in the image's natural pixels, so a reopened dialog shows the same mask.
 */

import { el } from '../dom.js';

const MASK_COLOR = '#ff2d2d';
const masks = new Map(); // image id -> list of ops: {kind: 'stroke', mode, size, points} | {kind: 'clear'}

/** The op list of an image's mask (created empty on first use; the same list on every call). */
export function maskFor(imageId) {
  if (!masks.has(imageId)) masks.set(imageId, []);
  return masks.get(imageId);
}

/** Give image `toId` a copy of the mask of image `fromId` (an inpaint result keeps its source's mask). */
export function copyMask(fromId, toId) {
  masks.set(toId, [...maskFor(fromId)]);
}

/** The ops after the last Clear: what is painted now. */
function liveOps(ops) {
  let start = 0;
  ops.forEach((op, i) => { if (op.kind === 'clear') start = i + 1; });
  return ops.slice(start);
}

/** Draw one stroke (or the segment from point i-1 to i when `from` is given) in `color`. */
function drawStroke(ctx, op, color, from = null) {
  ctx.save();
  ctx.globalCompositeOperation = op.mode === 'erase' ? 'destination-out' : 'source-over';
  ctx.strokeStyle = ctx.fillStyle = color;
  ctx.lineWidth = op.size;
  ctx.lineCap = ctx.lineJoin = 'round';
  const points = from === null ? op.points : op.points.slice(from - 1);
  if (points.length === 1) {
    ctx.beginPath();
    ctx.arc(points[0][0], points[0][1], op.size / 2, 0, Math.PI * 2);
    ctx.fill();
  } else {
    ctx.beginPath();
    ctx.moveTo(points[0][0], points[0][1]);
    for (const [x, y] of points.slice(1)) ctx.lineTo(x, y);
    ctx.stroke();
  }
  ctx.restore();
}

/** Clear a canvas and draw every live stroke of `ops` on it in `color`. */
function replay(canvas, ops, color) {
  const ctx = canvas.getContext('2d');
  ctx.clearRect(0, 0, canvas.width, canvas.height);
  for (const op of liveOps(ops)) drawStroke(ctx, op, color);
}

/**
 * createMaskPainter({onChange}) -> {node, mask, load(image), setMode, setSize, undo, clear, isEmpty, toDataUrl,
 * size}. onChange() runs after every stroke, undo and clear (to update buttons).
 */
export function createMaskPainter({ onChange = () => {} } = {}) {
  const base = el('canvas', { class: 'inpaint-base', width: 1, height: 1, 'aria-hidden': 'true' });
  const mask = el('canvas', { class: 'inpaint-mask', width: 1, height: 1, tabindex: '0', role: 'img',
    'aria-label': 'Mask: paint over the area to repaint' });
  const node = el('div', { class: 'inpaint-stage' }, base, mask);
  let ops = [];
  let mode = 'brush';
  let size = 32;
  let current = null;

  /** A pointer event's position in the image's natural pixels. */
  function point(event) {
    const rect = mask.getBoundingClientRect();
    const x = ((event.clientX - rect.left) * mask.width) / Math.max(rect.width, 1);
    const y = ((event.clientY - rect.top) * mask.height) / Math.max(rect.height, 1);
    return [Math.round(x * 10) / 10, Math.round(y * 10) / 10];
  }

  mask.addEventListener('pointerdown', (event) => {
    if (event.pointerType === 'mouse' && event.button !== 0) return;
    event.preventDefault();
    mask.focus({ preventScroll: true });
    mask.setPointerCapture?.(event.pointerId);
    current = { kind: 'stroke', mode, size, points: [point(event)] };
    ops.push(current);
    drawStroke(mask.getContext('2d'), current, MASK_COLOR);
  });
  mask.addEventListener('pointermove', (event) => {
    if (!current) return;
    current.points.push(point(event));
    drawStroke(mask.getContext('2d'), current, MASK_COLOR, current.points.length - 1);
  });
  const end = () => {
    if (!current) return;
    current = null;
    onChange();
  };
  mask.addEventListener('pointerup', end);
  mask.addEventListener('pointercancel', end);
  mask.addEventListener('lostpointercapture', end);

  return {
    node,
    mask,
    /** Draw `image` (an ImageOut) and its remembered mask; resolves once drawn, rejects when it cannot load. */
    async load(image) {
      const picture = new Image();
      picture.src = image.url;
      await picture.decode();
      for (const canvas of [base, mask]) {
        canvas.width = picture.naturalWidth;
        canvas.height = picture.naturalHeight;
      }
      base.getContext('2d').drawImage(picture, 0, 0);
      ops = maskFor(image.id);
      replay(mask, ops, MASK_COLOR);
      if (size === 32) size = Math.max(8, Math.round(Math.min(mask.width, mask.height) / 12));
      onChange();
    },
    /** 'brush' or 'erase'. */
    setMode(next) { mode = next; },
    /** Brush width in image pixels. */
    setSize(next) { size = Math.max(1, Number(next) || 1); },
    /** The brush width. */
    size: () => size,
    /** The natural size of the image. */
    dimensions: () => ({ width: mask.width, height: mask.height }),
    /** Undo the last stroke (or Clear). */
    undo() {
      if (current || !ops.length) return;
      ops.pop();
      replay(mask, ops, MASK_COLOR);
      onChange();
    },
    /** Clear the mask (undoable). */
    clear() {
      if (!liveOps(ops).length) return;
      ops.push({ kind: 'clear' });
      replay(mask, ops, MASK_COLOR);
      onChange();
    },
    /** True when nothing is painted. */
    isEmpty: () => !liveOps(ops).some((op) => op.mode !== 'erase'),
    /** True when there is something to undo. */
    canUndo: () => ops.length > 0,
    /** The mask as a black/white PNG data URL of the image's natural size (white = repaint). */
    toDataUrl() {
      const layer = el('canvas', { width: mask.width, height: mask.height });
      replay(layer, ops, '#ffffff');
      const out = el('canvas', { width: mask.width, height: mask.height });
      const ctx = out.getContext('2d');
      ctx.fillStyle = '#000000';
      ctx.fillRect(0, 0, out.width, out.height);
      ctx.drawImage(layer, 0, 0);
      return out.toDataURL('image/png');
    },
  };
}
