// Elastic explanation views, drawn on one canvas over the overview (which stays underneath as the starting
// point of every transition). The server sends a view's numbers once; the transition, the sliding-kernel
// sweep, hover highlights and readouts all run here, with no round trip per frame or per hover.
const ENTER_MS = 480;
const SWEEP_MS_PER_POSITION = 0.8;
const LOGIT_STEP_MS = 110;
const NOTE_ROOM = 24;  // px below the neurons, past the overview's own bottom, for annotations that wrap
const DOCK = "dock";  // readouts that would cover what they explain go to the top-right corner instead

const ease = (t) => (t < 0.5 ? 4 * t * t * t : 1 - Math.pow(-2 * t + 2, 3) / 2);
const lerp = (a, b, t) => a + (b - a) * t;
const lerpRect = (a, b, t) => ({ x: lerp(a.x, b.x, t), y: lerp(a.y, b.y, t), w: lerp(a.w, b.w, t), h: lerp(a.h, b.h, t) });
const clamp01 = (t) => Math.max(0, Math.min(1, t));

// A real minus sign, and no "−0.00": a value that rounds to zero is written without a sign.
function format(value, digits = 2) {
  const text = value.toFixed(Math.abs(value) >= 100 ? 0 : digits);
  return /^-[0.]*$/.test(text) ? text.slice(1) : text.replace("-", "−");
}

function bytes(b64) {
  const text = atob(b64);
  const out = new Uint8Array(text.length);
  for (let i = 0; i < text.length; i++) out[i] = text.charCodeAt(i);
  return out;
}
const floats = (b64) => new Float32Array(bytes(b64).buffer);

function rgbPalette(hexes) {
  const rgb = new Uint8Array(hexes.length * 3);
  hexes.forEach((hex, i) => { for (let k = 0; k < 3; k++) rgb[3 * i + k] = parseInt(hex.slice(1 + 2 * k, 3 + 2 * k), 16); });
  return rgb;
}

// An offscreen canvas of one (rows × cols) map of palette indices, drawn with nearest-neighbour scaling later.
function bitmap(indices, offset, rows, cols, palette) {
  const canvas = document.createElement("canvas");
  canvas.width = cols;
  canvas.height = rows;
  const context = canvas.getContext("2d");
  const image = context.createImageData(cols, rows);
  for (let i = 0; i < rows * cols; i++) {
    const p = 3 * indices[offset + i];
    image.data.set([palette[p], palette[p + 1], palette[p + 2], 255], 4 * i);
  }
  context.putImageData(image, 0, 0);
  return canvas;
}

function element(tag, className, text) {
  const node = document.createElement(tag);
  if (className) node.className = className;
  if (text !== undefined) node.textContent = text;
  return node;
}

export function render({ model, el }) {
  const host = element("div", "el-host");
  host.append(model.get_child("overview"));
  const overlay = element("div", "el-overlay");
  overlay.setAttribute("role", "region");
  const bar = element("div", "el-bar");
  const backButton = element("button", "el-back", "← Overview");
  backButton.title = "Back one level (Esc)";
  const title = element("h2", "el-title");
  title.tabIndex = -1;
  const actions = element("div", "el-actions");
  const replayButton = element("button", "el-replay", "↻ Replay");
  const pauseButton = element("button", "el-pause", "❚❚ Pause");
  const softmaxButton = element("button", "el-softmax", "Softmax →");
  actions.append(replayButton, pauseButton, softmaxButton);
  bar.append(backButton, title, actions);
  const scroller = element("div", "el-scroll");
  const frame = element("div", "el-frame");
  const canvas = element("canvas", "el-canvas");
  canvas.setAttribute("aria-hidden", "true");
  const hits = element("div", "el-hits");
  const labels = element("div", "el-labels");
  labels.setAttribute("aria-hidden", "true");
  const tooltip = element("div", "el-tooltip");
  tooltip.setAttribute("role", "status");
  tooltip.setAttribute("aria-live", "polite");
  frame.append(canvas, labels, hits, tooltip);
  scroller.append(frame);
  overlay.append(bar, scroller);
  const summary = element("p", "el-summary");
  summary.setAttribute("aria-live", "polite");
  el.append(host, overlay, summary);

  const context = canvas.getContext("2d");
  canvas.textBoxes = [];  // what draw() wrote, for tests (see text())
  let palettes = {};
  let thumbs = {};  // column name -> [canvas per neuron]
  let geometry = null;  // the open view's geometry (model.geometries[key])
  let key = null;  // layer whose selection opened the view
  let neuron = 0;
  let data = null;  // decoded model.view
  let phase = "closed";  // closed | entering | open | leaving
  let focus = 0;  // 0 = overview positions, 1 = the elastic layout
  let transition = null;  // {from, to, start}
  let sweep = null;  // {start, positions, duration, pos, playing, pausedAt}
  let inspect = null;  // conv: [row, col]; flatten: index; softmax: class
  let reveal = 0;  // softmax: time since the view was shown
  let scheduled = false;
  let swept = null;  // the view whose sweep has been started: a redraw of the same view does not replay it
  let restoring = false;  // the view is on screen as the page loads: no entry animation, no sweep
  let keyboard = false;  // the view was opened or closed from the keyboard: move focus along with it
  let units = 1;  // CSS pixels per layout unit

  const layout = () => model.layout;
  const columns = () => model.layout.columns;
  const tile = () => model.layout.tile;
  const columnIndex = (name) => columns().findIndex((column) => column.name === name);
  const overviewTile = (c, i) => ({ x: columns()[c].x, y: columns()[c].tops[i], w: columns()[c].width, h: tile() });

  // -- data -------------------------------------------------------------------------------------------------
  function loadContext() {
    palettes = Object.fromEntries(Object.entries(model.palettes).map(([name, hexes]) => [name, rgbPalette(hexes)]));
    thumbs = {};
    for (const [name, entry] of Object.entries(model.context.maps || {})) {
      const [rows, cols] = entry.size;
      const indices = bytes(entry.data);
      const count = indices.length / (rows * cols);
      const palette = name === columns()[0].name ? palettes.greys : palettes.diverging;
      thumbs[name] = Array.from({ length: count }, (_, n) => bitmap(indices, n * rows * cols, rows, cols, palette));
    }
  }

  function decodeView(view) {
    const decoded = { ...view };
    if (view.kind === "conv") {
      const [inRows, inCols] = view.input_size;
      const [rows, cols] = view.output_size;
      const inputs = bytes(view.inputs);
      const channels = inputs.length / (inRows * inCols);
      const inputPalette = view.source_is_image ? palettes.greys : palettes.diverging;
      decoded.inputMaps = Array.from({ length: channels }, (_, c) => bitmap(inputs, c * inRows * inCols, inRows, inCols, inputPalette));
      const mids = bytes(view.intermediates);
      decoded.midMaps = Array.from({ length: channels }, (_, c) => bitmap(mids, c * rows * cols, rows, cols, palettes.diverging));
      decoded.outputMap = bitmap(bytes(view.output), 0, rows, cols, palettes.diverging);
      decoded.midValues = floats(view.intermediate_values);
      decoded.outputValues = floats(view.output_values);
      decoded.kernelColors = bytes(view.kernel_colors);
      decoded.channels = channels;
    } else if (view.kind === "flatten") {
      const [rows, cols] = view.input_size;
      const maps = bytes(view.inputs);
      const channels = maps.length / (rows * cols);
      decoded.inputMaps = Array.from({ length: channels }, (_, c) => bitmap(maps, c * rows * cols, rows, cols, palettes.diverging));
      decoded.values = floats(view.values);
      decoded.weights = floats(view.weights);
      decoded.products = floats(view.products);
      decoded.strip = bitmap(bytes(view.value_colors), 0, decoded.values.length, 1, palettes.diverging);
      decoded.weightColors = bytes(view.weight_colors);
      decoded.indexOf = new Map();  // "channel,row,col" -> flatten index, inverted from the server's order
      for (let i = 0; i < decoded.values.length; i++) {
        const [row, col, channel] = view.order.slice(3 * i, 3 * i + 3);
        decoded.indexOf.set(`${channel},${row},${col}`, i);
      }
      decoded.channels = channels;
    }
    return decoded;
  }

  // -- opening, switching and closing -----------------------------------------------------------------------
  function animateFocus(to, then) {
    transition = { from: focus, to, start: performance.now(), then };
    overlay.dataset.phase = phase;
    schedule();
  }

  function open(layer, index) {
    overlay.timings = { opened: performance.now() };  // for benchmarks: when the transition and the data began
    const switching = phase !== "closed" && key !== layer;
    key = layer;
    neuron = index;
    geometry = model.geometries[layer];
    overlay.dataset.view = "";  // set again once this view's numbers are on screen (shown)
    inspect = null;
    hideTooltip();
    overlay.classList.add("el-visible");
    if (phase === "closed") {
      measure();
      scroller.scrollLeft = deepQuery(host, ".ov-scroll")?.scrollLeft ?? 0;  // grow out of what is on screen
    }
    phase = "entering";
    host.inert = true;
    if (switching) focus = Math.min(focus, 0.35);
    buildLabels();
    swept = null;
    const ready = () => { phase = "open"; overlay.dataset.phase = phase; shown(); };
    if (!restoring) return animateFocus(1, ready);
    focus = 1;  // the page came back to this view (a reload, Back, a shared link): show it as it was left
    ready();
  }

  function close() {
    if (phase === "closed" || phase === "leaving") return;
    phase = "leaving";
    sweep = null;
    hideTooltip();
    hits.replaceChildren();
    animateFocus(0, () => {
      phase = "closed";
      overlay.dataset.phase = phase;
      overlay.classList.remove("el-visible");
      summary.textContent = "";
      data = null;
      host.inert = false;
      if (keyboard) deepQuery(host, `.ov-tile[data-layer="${columns()[geometry.target].name}"][data-index="${neuron}"]`)?.focus();
      keyboard = false;
    });
  }

  function shown() {
    if (!data || data.layer !== key || data.neuron !== neuron || phase !== "open") return;
    overlay.dataset.view = `${key}/${neuron}`;
    showResult();
    buildHits();
    const view = overlay.dataset.view;
    if (data.kind === "conv" && swept !== view) {  // a new colour range or image redraws the view, no new sweep
      if (restoring) endedSweep(); else startSweep();
      swept = view;
    }
    restoring = false;
    if (data.kind === "softmax") reveal = performance.now();
    schedule();
    if (keyboard) title.focus({ preventScroll: true });
  }

  // On a screen narrower than the view, scroll sideways to what the view computes (the output or the
  // probabilities), unless it is on screen already.
  function showResult() {
    if (scroller.scrollWidth <= scroller.clientWidth) return;
    const target = geometry.output ?? geometry.probabilities?.[0];
    const left = geometry.kind === "softmax" ? geometry.logits[0].x - 3 : target.x;
    const right = geometry.kind === "softmax" ? target.x + 2 : target.x + target.w;
    const toPixels = scroller.scrollWidth / layout().width;
    const [from, to] = [left * toPixels, right * toPixels];
    const view = scroller.scrollLeft;
    if (from >= view && to <= view + scroller.clientWidth) return;
    scroller.scrollTo({ left: Math.max(0, (from + to) / 2 - scroller.clientWidth / 2), behavior: "instant" });
  }

  function back() {
    model.back = [Date.now()];
  }

  function showView() {
    const view = model.view;
    if (!view || !view.kind) {
      close();
      return;
    }
    const received = performance.now();
    data = decodeView(view);
    const decoded = performance.now();
    overlay.dataset.view = "";
    title.textContent = headline();
    summary.textContent = view.summary;
    softmaxButton.hidden = view.kind !== "flatten";
    replayButton.hidden = pauseButton.hidden = view.kind !== "conv";
    overlay.setAttribute("aria-label", headline());
    if (phase === "closed" || phase === "leaving" || key !== view.layer || neuron !== view.neuron) open(view.layer, view.neuron);
    else if (phase === "open") shown();
    Object.assign(overlay.timings, { received, decoded });
    schedule();
  }

  function headline() {
    if (!data) return "";
    if (data.kind === "conv") return `${data.layer} · neuron ${data.neuron + 1}: how it is computed from ${data.source}`;
    if (data.kind === "flatten") return `Class score of “${data.class_name}”: flatten, weights, bias`;
    return "Softmax: from class scores to probabilities";
  }

  // -- the sliding-kernel sweep -----------------------------------------------------------------------------
  function startSweep() {
    const [rows, cols] = data.output_size;
    const positions = rows * cols;
    sweep = { start: performance.now(), positions, duration: Math.max(1800, positions * SWEEP_MS_PER_POSITION), pos: 0, playing: true };
    overlay.sweepStats = { frames: 0, first: null, last: null, longest: 0, ended: false, positions };
    pauseButton.textContent = "❚❚ Pause";
    overlay.dataset.sweep = "playing";
    schedule();
  }

  // The sweep as if it had run to its end: the whole map on screen, Play starts it again.
  function endedSweep() {
    startSweep();
    sweep.playing = false;
    sweep.pos = sweep.positions;
    overlay.sweepStats.ended = true;
    overlay.dataset.sweep = "ended";
    pauseButton.textContent = "▶ Play";
  }

  function togglePause() {
    if (!sweep) return;
    if (sweep.playing) {
      sweep.playing = false;
      sweep.pausedAt = performance.now();
      pauseButton.textContent = "▶ Play";
      overlay.dataset.sweep = "paused";
    } else if (sweep.pos < sweep.positions) {
      sweep.start += performance.now() - sweep.pausedAt;
      sweep.playing = true;
      pauseButton.textContent = "❚❚ Pause";
      overlay.dataset.sweep = "playing";
      schedule();
    } else startSweep();
  }

  function stepSweep(now) {
    if (!sweep || !sweep.playing) return;
    const stats = overlay.sweepStats;
    stats.frames += 1;
    stats.first ??= now;
    if (stats.last !== null) stats.longest = Math.max(stats.longest, now - stats.last);
    stats.last = now;
    sweep.pos = Math.min(sweep.positions, Math.floor((sweep.positions * (now - sweep.start)) / sweep.duration));
    if (sweep.pos >= sweep.positions) {
      sweep.playing = false;
      stats.ended = true;
      overlay.dataset.sweep = "ended";
      pauseButton.textContent = "▶ Play";
    }
  }

  // -- drawing ----------------------------------------------------------------------------------------------
  function schedule() {
    if (scheduled) return;
    scheduled = true;
    requestAnimationFrame(frameStep);
  }

  function frameStep(now) {
    scheduled = false;
    if (transition) {
      const t = clamp01((now - transition.start) / ENTER_MS);
      focus = lerp(transition.from, transition.to, ease(t));
      if (t >= 1) {
        const then = transition.then;
        transition = null;
        then();
      }
    }
    stepSweep(now);
    draw(now);
    const softmaxAppearing = data?.kind === "softmax" && phase === "open" && now - reveal < softmaxRevealMs() + 50;
    if (transition || sweep?.playing || softmaxAppearing) schedule();
  }

  function measure() {
    const frameOfOverview = deepQuery(host, ".ov-frame");
    const outer = el.getBoundingClientRect();
    if (frameOfOverview) {
      const inner = frameOfOverview.getBoundingClientRect();
      bar.style.height = `${Math.max(34, inner.top - outer.top)}px`;
    }
    overlay.style.height = `${host.getBoundingClientRect().height + NOTE_ROOM}px`;
    scroller.style.paddingBottom = `${NOTE_ROOM}px`;
    const ratio = window.devicePixelRatio || 1;
    const width = frame.clientWidth;
    const height = frame.clientHeight;
    canvas.width = Math.round(width * ratio);
    canvas.height = Math.round(height * ratio);
    units = width / layout().width;
    context.setTransform(ratio * units, 0, 0, ratio * (height / layout().height), 0, 0);
    schedule();
  }

  function drawMap(map, rect, alpha = 1) {
    context.globalAlpha = alpha;
    context.drawImage(map, rect.x, rect.y, rect.w, rect.h);
    context.globalAlpha = 1;
  }

  // Draw a map revealed up to `pos` (row-major), as the sweep computes it position by position.
  function drawRevealed(map, rect, pos, rows, cols) {
    if (pos >= rows * cols) return drawMap(map, rect);
    const row = Math.floor(pos / cols);
    const col = pos % cols;
    const cell = rect.h / rows;
    if (row > 0) context.drawImage(map, 0, 0, cols, row, rect.x, rect.y, rect.w, cell * row);
    if (col > 0) context.drawImage(map, 0, row, col, 1, rect.x, rect.y + cell * row, (rect.w * col) / cols, cell);
  }

  function frameRect(rect, color = "#c9d1d9", width = 1) {
    context.strokeStyle = color;
    context.lineWidth = width / units;
    context.strokeRect(rect.x, rect.y, rect.w, rect.h);
  }

  function cellRect(rect, rows, cols, row, col, height = 1, width = 1) {
    return { x: rect.x + (col * rect.w) / cols, y: rect.y + (row * rect.h) / rows, w: (width * rect.w) / cols, h: (height * rect.h) / rows };
  }

  function highlightCell(rect, color, minimum = 3) {
    const grow = Math.max(0, minimum / units - rect.w) / 2;
    context.strokeStyle = color;
    context.lineWidth = 2 / units;
    context.strokeRect(rect.x - grow, rect.y - grow, rect.w + 2 * grow, rect.h + 2 * grow);
  }

  function drawContextColumn(c, x, w, alpha) {
    const column = columns()[c];
    if (alpha <= 0.01) return;
    if (column.kind === "output") {
      context.globalAlpha = alpha;
      const probabilities = model.context.probabilities || [];
      const best = probabilities.indexOf(Math.max(...probabilities));
      column.tops.forEach((top, i) => {
        const left = x + model.bar_geometry.name_share * w;
        const span = (w - model.bar_geometry.name_share * w) * model.bar_geometry.bar_share;
        const height = layout().bar_height;
        context.fillStyle = i === best ? "#f28e2b" : "#9a9a9a";
        context.fillRect(left, top + (tile() - height) / 2, Math.max(0.03, span * probabilities[i]), height);
      });
      context.globalAlpha = 1;
      return;
    }
    column.tops.forEach((top, i) => drawMap(thumbs[column.name][i], { x, y: top, w, h: tile() }, alpha));
  }

  function draw(now) {
    const { width, height } = layout();
    context.clearRect(0, 0, width, height);
    canvas.textBoxes = [];
    canvas.textBoxesWidth = width;
    canvas.textBoxesHeight = height;
    context.imageSmoothingEnabled = false;
    if (!geometry) return;
    const f = focus;
    const detail = clamp01((f - 0.55) / 0.45);  // focus-only pieces fade in late and out early
    columns().forEach((column, c) => {
      if (c === geometry.source || c === geometry.target) return;
      const target = geometry.columns[c];
      drawContextColumn(c, lerp(column.x, target.x, f), lerp(column.width, target.w, f), lerp(1, target.alpha, f));
    });
    const target = columns()[geometry.target];
    if (geometry.kind !== "softmax") {
      target.tops.forEach((_, i) => {
        if (i === neuron) return;
        if (target.kind === "output") return;
        drawMap(thumbs[target.name][i], overviewTile(geometry.target, i), 1 - f);
      });
      if (target.kind === "output") drawContextColumn(geometry.target, target.x, target.width, 1 - f);
    }
    labels.style.opacity = detail;
    if (geometry.kind === "conv") drawConv(f, detail, now);
    else if (geometry.kind === "flatten") drawFlatten(f, detail);
    else drawSoftmax(f, detail, now);
  }

  function edge(x0, y0, x1, y1, color, widthPx, dashed, now) {
    context.strokeStyle = color;
    context.lineWidth = widthPx / units;
    context.setLineDash(dashed ? [4 / units, 3 / units] : []);
    context.lineDashOffset = dashed ? -((now / 40) % 7) / units : 0;
    const mid = (x0 + x1) / 2;
    context.beginPath();
    context.moveTo(x0, y0);
    context.bezierCurveTo(mid, y0, mid, y1, x1, y1);
    context.stroke();
    context.setLineDash([]);
  }

  function sourceRect(j, f) {
    return lerpRect(overviewTile(geometry.source, j), geometry.inputs[j], f);
  }

  function drawSources(f) {
    const source = columns()[geometry.source];
    source.tops.forEach((_, j) => {
      const rect = sourceRect(j, f);
      const map = data?.inputMaps?.[j] ?? thumbs[source.name][j];
      drawMap(map, rect);
      if (f > 0.5) frameRect(rect);
    });
  }

  function currentPosition() {
    if (Array.isArray(inspect)) return inspect;
    if (sweep && sweep.pos < sweep.positions) return [Math.floor(sweep.pos / data.output_size[1]), sweep.pos % data.output_size[1]];
    return null;
  }

  function drawConv(f, detail, now) {
    drawSources(f);
    const g = geometry;
    const out = lerpRect(overviewTile(g.target, neuron), g.output, f);
    const ready = data && data.kind === "conv" && data.layer === key;
    const [rows, cols] = ready ? data.output_size : [1, 1];
    const done = !sweep || inspect ? rows * cols : sweep.pos;
    if (ready) drawRevealed(data.outputMap, out, done, rows, cols);
    else drawMap(thumbs[columns()[g.target].name][neuron], out);
    frameRect(out, "#8a96a3");
    if (!ready || detail <= 0) return;
    context.globalAlpha = detail;
    const dashed = Boolean(sweep?.playing);
    const [kr, kc] = data.kernel_size;
    const here = currentPosition();
    g.inputs.forEach((input, c) => {
      const kernel = g.kernels[c];
      const mid = g.intermediates[c];
      edge(input.x + input.w, input.y + input.h / 2, kernel.x, kernel.y + kernel.h / 2, "#9aa5b1", 1, dashed, now);
      edge(kernel.x + kernel.w, kernel.y + kernel.h / 2, mid.x, mid.y + mid.h / 2, "#9aa5b1", 1, dashed, now);
      edge(mid.x + mid.w, mid.y + mid.h / 2, g.plus.x - g.plus.r, g.plus.y, "#9aa5b1", 1, dashed, now);
      for (let u = 0; u < kr; u++) {
        for (let v = 0; v < kc; v++) {
          const p = 3 * data.kernelColors[(c * kr + u) * kc + v];
          context.fillStyle = `rgb(${palettes.weights[p]},${palettes.weights[p + 1]},${palettes.weights[p + 2]})`;
          context.fillRect(kernel.x + (v * kernel.w) / kc, kernel.y + (u * kernel.h) / kr, kernel.w / kc, kernel.h / kr);
        }
      }
      frameRect(kernel, inspect?.kernel === c ? "#111" : "#8a96a3", inspect?.kernel === c ? 2.5 : 1);
      drawRevealed(data.midMaps[c], mid, done, rows, cols);
      frameRect(mid);
      if (here) {
        const [row, col] = here;
        const [r0, c0] = [data.window.origin[0] + row * data.window.stride[0], data.window.origin[1] + col * data.window.stride[1]];
        highlightCell(cellRect(input, data.input_size[0], data.input_size[1], r0, c0, kr, kc), "#f59e0b", 4);
        highlightCell(cellRect(mid, rows, cols, row, col), "#f59e0b");
      }
    });
    edge(g.plus.x + g.plus.r, g.plus.y, out.x, out.y + out.h / 2, "#9aa5b1", 1.5, dashed, now);
    plusNode(g.plus, data.bias, data.bias_color);
    if (here) highlightCell(cellRect(out, rows, cols, here[0], here[1]), "#f59e0b", 5);
    context.globalAlpha = 1;
  }

  // The ⊕ node: filled with the bias colour, outlined darker while inspected, its bias written underneath.
  function plusNode(plus, bias, colorIndex) {
    const weights = palettes.weights;
    const p = 3 * colorIndex;
    context.fillStyle = `rgb(${weights[p]},${weights[p + 1]},${weights[p + 2]})`;
    context.beginPath();
    context.arc(plus.x, plus.y, plus.r, 0, 2 * Math.PI);
    context.fill();
    context.strokeStyle = inspect === "bias" ? "#111" : "#5b6b7b";
    context.lineWidth = (inspect === "bias" ? 2.5 : 1.5) / units;
    context.stroke();
    plusSign(plus);
    text(`bias ${format(bias)}`, plus.x, plus.y + plus.r + 0.3, 0.3, "#333", "center", 600);
  }

  // Canvas text, also recorded (in layout units, with the shape it must fit in) so that tests can check what a
  // person reads on the canvas for overlaps and clipping, as they do for the page's HTML text.
  function text(value, x, y, size, color, align = "center", weight = 400, within = null) {
    context.fillStyle = color;
    context.textAlign = align;
    context.textBaseline = "middle";
    context.font = `${weight} ${size}px system-ui, sans-serif`;
    context.fillText(value, x, y);
    if (context.globalAlpha < 0.5) return;
    context.font = `${weight} ${100 * size}px system-ui, sans-serif`;  // fonts below a pixel measure coarsely
    const m = context.measureText(value);
    canvas.textBoxes.push({
      text: value, x: x - m.actualBoundingBoxLeft / 100, y: y - m.actualBoundingBoxAscent / 100,
      w: (m.actualBoundingBoxLeft + m.actualBoundingBoxRight) / 100,
      h: (m.actualBoundingBoxAscent + m.actualBoundingBoxDescent) / 100, within,
    });
  }

  // The font size (at most `size`) at which `value` is no wider than `width`, in layout units.
  function fitting(value, size, width, weight) {
    context.font = `${weight} 100px system-ui, sans-serif`;
    return Math.min(size, (100 * width) / context.measureText(value).width);
  }

  // The widest box of text height `height` that fits inside a circle, for text written in it.
  function insideCircle(x, y, r, height, name) {
    const half = Math.sqrt(Math.max(0, r * r - (height / 2) ** 2));
    return { x: x - half, y: y - r, w: 2 * half, h: 2 * r, name };
  }

  function plusSign(plus) {
    context.strokeStyle = "#222";
    context.lineWidth = 2 / units;
    const arm = plus.r * 0.55;
    context.beginPath();
    context.moveTo(plus.x - arm, plus.y);
    context.lineTo(plus.x + arm, plus.y);
    context.moveTo(plus.x, plus.y - arm);
    context.lineTo(plus.x, plus.y + arm);
    context.stroke();
  }

  function stripY(index) {
    return geometry.strip.y + ((index + 0.5) * geometry.strip.h) / data.values.length;
  }

  function drawFlatten(f, detail) {
    drawSources(f);
    const g = geometry;
    const score = lerpRect(overviewTile(g.target, neuron), g.output, f);
    const ready = data && data.kind === "flatten";
    if (!ready || detail <= 0) return;
    context.globalAlpha = detail;
    const strip = g.strip;
    const count = data.values.length;
    const weights = palettes.weights;
    context.lineWidth = 0.6 / units;
    for (let i = 0; i < count; i++) {
      const p = 3 * data.weightColors[i];
      context.strokeStyle = `rgba(${weights[p]},${weights[p + 1]},${weights[p + 2]},0.45)`;
      context.beginPath();
      context.moveTo(strip.x + strip.w, stripY(i));
      context.lineTo(g.plus.x - g.plus.r, g.plus.y);
      context.stroke();
    }
    drawMap(data.strip, strip);
    frameRect(strip, "#8a96a3");
    edge(g.plus.x + g.plus.r, g.plus.y, score.x, score.y + score.h / 2, "#9aa5b1", 1.5, false, 0);
    plusNode(g.plus, data.bias, data.bias_color);
    context.fillStyle = "#fff4e8";
    context.fillRect(score.x, score.y, score.w, score.h);
    frameRect(score, "#b35806", 2);
    const scoreText = format(data.score);
    const scoreSize = fitting(scoreText, 0.55, 0.85 * score.w, 700);  // a long negative score still fits its box
    text(scoreText, score.x + score.w / 2, score.y + score.h / 2, scoreSize, "#7f2704", "center", 700, { ...score, name: "the score box" });
    text(data.class_name, score.x + score.w / 2, score.y + score.h + 0.35, 0.36, "#b35806", "center", 700);
    if (typeof inspect === "number") {
      const [row, col, channel] = data.order.slice(3 * inspect, 3 * inspect + 3);
      const map = g.inputs[channel];
      const [rows, cols] = data.input_size;
      const pixel = cellRect(map, rows, cols, row, col);
      const y = stripY(inspect);
      const q = 3 * data.weightColors[inspect];
      edge(pixel.x + pixel.w / 2, pixel.y + pixel.h / 2, strip.x, y, "#f59e0b", 2, false, 0);
      context.strokeStyle = `rgb(${weights[q]},${weights[q + 1]},${weights[q + 2]})`;
      context.lineWidth = 3 / units;
      context.beginPath();
      context.moveTo(strip.x + strip.w, y);
      context.lineTo(g.plus.x - g.plus.r, g.plus.y);
      context.stroke();
      highlightCell(pixel, "#f59e0b", 5);
      context.fillStyle = "#f59e0b";
      context.fillRect(strip.x - 0.12, y - 0.04, strip.w + 0.24, 0.08);
      drawMagnifier(inspect);
    }
    context.globalAlpha = 1;
  }

  // The flatten strip holds more elements than it has pixels: show the neighbourhood of the inspected one.
  function drawMagnifier(index) {
    const strip = geometry.strip;
    const cell = 0.34;
    const span = 7;
    const x = strip.x - 1.05;
    const y0 = Math.max(strip.y, Math.min(strip.y + strip.h - (2 * span + 1) * cell, stripY(index) - (span + 0.5) * cell));
    context.fillStyle = "#fff";
    context.fillRect(x - 0.05, y0 - 0.05, 0.7, (2 * span + 1) * cell + 0.1);
    for (let k = -span; k <= span; k++) {
      const i = index + k;
      if (i < 0 || i >= data.values.length) continue;
      const y = y0 + (k + span) * cell;
      context.drawImage(data.strip, 0, i, 1, 1, x, y, 0.6, cell);
      if (k === 0) highlightCell({ x, y, w: 0.6, h: cell }, "#f59e0b");
    }
    frameRect({ x, y: y0, w: 0.6, h: (2 * span + 1) * cell }, "#8a96a3");
  }

  // When the last probability has fully appeared (see drawSoftmax): logits one by one, then the probabilities.
  function softmaxRevealMs() {
    const count = columns()[geometry.target].tops.length;
    return (count + 4) * LOGIT_STEP_MS + count * 30;
  }

  function drawSoftmax(f, detail, now) {
    const g = geometry;
    const column = columns()[g.target];
    const ready = data && data.kind === "softmax";
    const oranges = palettes.oranges;
    const elapsed = phase === "open" ? now - reveal : 0;
    column.tops.forEach((top, i) => {
      const from = { x: column.x + column.width / 2, y: top + tile() / 2, r: tile() / 2 };
      const circle = g.logits[i];
      const x = lerp(from.x, circle.x, f);
      const y = lerp(from.y, circle.y, f);
      const r = lerp(from.r * 0.6, circle.r, f);
      const shown = ready ? clamp01((elapsed - i * LOGIT_STEP_MS) / LOGIT_STEP_MS) : 0;
      context.globalAlpha = Math.max(0.25 * f, shown);
      const p = ready ? 3 * data.logit_colors[i] : 0;
      context.fillStyle = ready ? `rgb(${oranges[p]},${oranges[p + 1]},${oranges[p + 2]})` : "#eee";
      context.beginPath();
      context.arc(x, y, r, 0, 2 * Math.PI);
      context.fill();
      context.strokeStyle = inspect === i ? "#111" : i === neuron ? "#b35806" : "#c08a5b";
      context.lineWidth = (inspect === i || i === neuron ? 2.5 : 1) / units;
      context.stroke();
      if (!ready) return;
      text(format(data.logits[i]), x, y, 0.25, data.logit_colors[i] > 150 ? "#fff" : "#4a1d00", "center", 600, insideCircle(x, y, r, 0.25, "its circle"));
      text(data.classes[i], x - r - 0.25, y, 0.36, "#333", "right", i === neuron ? 700 : 400);
      const after = clamp01((elapsed - (column.tops.length + 1) * LOGIT_STEP_MS - i * 30) / (3 * LOGIT_STEP_MS)) * detail;
      if (after <= 0) return;
      context.globalAlpha = after;
      const prob = g.probabilities[i];
      edge(x + r, y, prob.x - prob.r, prob.y, inspect === i ? "#b35806" : "#c9b8a8", inspect === i ? 2.5 : 1, false, 0);
      const q = 3 * Math.round(255 * data.probabilities[i]);
      context.fillStyle = `rgb(${oranges[q]},${oranges[q + 1]},${oranges[q + 2]})`;
      context.beginPath();
      context.arc(prob.x, prob.y, prob.r, 0, 2 * Math.PI);
      context.fill();
      context.stroke();
      if (inspect === i || (inspect === null && i === neuron)) {
        const midX = (x + r + prob.x - prob.r) / 2;
        context.fillStyle = "#fff";
        context.fillRect(midX - 1.6, prob.y - 0.22, 3.2, 0.44);
        text(`e^${format(data.logits[i])} ÷ ${format(data.total, 1)}`, midX, prob.y, 0.32, "#7f2704", "center", 600);
      }
      text(`${(100 * data.probabilities[i]).toFixed(1)}%`, prob.x + prob.r + 0.25, prob.y, 0.36, "#333", "left", i === neuron ? 700 : 400);
    });
    context.globalAlpha = 1;
  }

  // -- labels, hit targets, hover and keys ------------------------------------------------------------------
  function place(node, rect) {
    const { width, height } = layout();
    node.style.left = `${(100 * rect.x) / width}%`;
    node.style.top = `${(100 * rect.y) / height}%`;
    node.style.width = `${(100 * rect.w) / width}%`;
    node.style.height = `${(100 * rect.h) / height}%`;
  }

  function buildLabels() {
    labels.replaceChildren();
    const top = Math.min(...columns().flatMap((column) => column.tops));
    const bottom = Math.max(...columns().flatMap((column) => column.tops)) + tile();
    for (const label of geometry.labels) {
      const heading = element("div", "el-label", label.text);
      place(heading, { x: label.x - label.w / 2, y: top - 0.75, w: label.w, h: 0.6 });
      const note = element("div", "el-note", label.note);
      const noteTop = label.note_top ?? bottom + 0.1;
      place(note, { x: label.x - label.w / 2, y: noteTop, w: label.w, h: Math.min(1.2, layout().height - noteTop) });
      labels.append(heading, note);
    }
  }

  function showTooltip(text, rect) {
    tooltip.textContent = text;
    tooltip.hidden = false;
    tooltip.classList.toggle("el-docked", rect === DOCK);
    tooltip.style.maxWidth = `${Math.min(360, scroller.clientWidth - 16)}px`;
    if (rect === DOCK) return keepInView();
    if (rect.below) {  // under the whole target, right-aligned with it: clear of what lies beside it (the ⊕)
      const { width, height } = layout();
      Object.assign(tooltip.style, {
        left: "", right: `${100 - (100 * (rect.below.x + rect.below.w)) / width}%`,
        top: `${(100 * (rect.below.y + rect.below.h + 0.25)) / height}%`, bottom: "",
      });
      return keepInView();
    }
    const { width } = layout();
    const right = rect.x + rect.w + 0.3;
    const leftSide = right > width * 0.68;
    tooltip.style.left = leftSide ? "" : `${(100 * right) / width}%`;
    tooltip.style.right = leftSide ? `${100 - (100 * (rect.x - 0.3)) / width}%` : "";
    const { height } = layout();
    const low = rect.y + rect.h > 0.62 * height;  // grow upwards from low targets so the tooltip stays inside
    tooltip.style.top = low ? "" : `${(100 * Math.max(0.2, rect.y)) / height}%`;
    tooltip.style.bottom = low ? `${100 - (100 * (rect.y + rect.h)) / height}%` : "";
    keepInView();
  }

  // On a narrow screen the view scrolls sideways: slide the tooltip into the part of it that is on screen.
  function keepInView() {
    tooltip.style.translate = "";
    const box = tooltip.getBoundingClientRect();
    const visible = scroller.getBoundingClientRect();
    const shift = Math.max(0, visible.left + 8 - box.left) - Math.max(0, box.right - (visible.right - 8));
    if (shift) tooltip.style.translate = `${shift}px 0`;
  }

  function hideTooltip() {
    tooltip.hidden = true;
    tooltip.textContent = "";
  }

  function setInspect(value, text, rect) {
    inspect = value;
    if (text) showTooltip(text, rect);
    else hideTooltip();
    schedule();
  }

  function hit(rect, label, handlers) {
    const button = element("button", "el-hit");
    button.type = "button";
    button.setAttribute("aria-label", label);
    place(button, rect);
    const { enter, move, keys, activate } = handlers;
    button.addEventListener("mouseenter", (event) => enter?.(event));
    button.addEventListener("focus", (event) => enter?.(event));
    if (move) button.addEventListener("mousemove", move);
    button.addEventListener("mouseleave", () => { if (el.getRootNode().activeElement !== button) setInspect(null); });
    button.addEventListener("blur", () => setInspect(null));
    button.addEventListener("click", (event) => { event.stopPropagation(); activate?.(event); });
    button.addEventListener("keydown", (event) => {
      if (keys?.(event)) event.preventDefault();
    });
    hits.append(button);
    return button;
  }

  // Arrow keys move a (row, col) cursor; returns true when it handled the key.
  function arrowMove(event, position, rows, cols, apply) {
    const moves = { ArrowUp: [-1, 0], ArrowDown: [1, 0], ArrowLeft: [0, -1], ArrowRight: [0, 1] };
    if (!(event.key in moves)) return false;
    const [dr, dc] = moves[event.key];
    apply(Math.max(0, Math.min(rows - 1, position[0] + dr)), Math.max(0, Math.min(cols - 1, position[1] + dc)));
    return true;
  }

  function pixelAt(event, rows, cols) {
    const box = event.currentTarget.getBoundingClientRect();
    const row = Math.min(rows - 1, Math.max(0, Math.floor(((event.clientY - box.top) / box.height) * rows)));
    const col = Math.min(cols - 1, Math.max(0, Math.floor(((event.clientX - box.left) / box.width) * cols)));
    return [row, col];
  }

  function buildHits() {
    hits.replaceChildren();
    if (data.kind === "conv") buildConvHits();
    else if (data.kind === "flatten") buildFlattenHits();
    else buildSoftmaxHits();
  }

  function buildConvHits() {
    const g = geometry;
    const [rows, cols] = data.output_size;
    const [kr, kc] = data.kernel_size;
    const channels = data.channels;
    const sourceName = (c) => (data.source_is_image ? `${["red", "green", "blue"][c] ?? c} channel of the input` : `${data.source} neuron ${c + 1}`);
    let cursor = data.argmax;
    const pause = () => { if (sweep?.playing) togglePause(); };
    const outputText = ([row, col]) => {
      const values = Array.from({ length: channels }, (_, c) => data.midValues[(c * rows + row) * cols + col]);
      const sum = values.reduce((a, b) => a + b, 0);
      return `${data.layer} neuron ${data.neuron + 1} at (${row}, ${col}) = ${format(data.outputValues[row * cols + col], 3)}: `
        + `sum of the ${channels} intermediate values (${values.map((v) => format(v)).join(", ")}) = ${format(sum, 3)}, `
        + `plus bias ${format(data.bias, 3)}.`;
    };
    const showOutput = (position) => {
      cursor = position;
      pause();
      setInspect(position, outputText(position), { below: g.output });
    };
    g.kernels.forEach((rect, c) => {
      const weights = data.kernels.slice(c * kr * kc, (c + 1) * kr * kc);
      const rowsText = Array.from({ length: kr }, (_, u) => `[${weights.slice(u * kc, (u + 1) * kc).map((w) => format(w, 3)).join(", ")}]`);
      const text = `Kernel for ${sourceName(c)}: ${rowsText.join(" ")}`;
      const button = hit(rect, text, { enter: () => setInspect({ kernel: c }, text, rect) });
      button.dataset.part = "kernel";
      button.dataset.channel = c;
    });
    g.intermediates.forEach((rect, c) => {
      const text = ([row, col]) => `Intermediate result ${c + 1} (${sourceName(c)} ⊛ its kernel) at (${row}, ${col}) = `
        + `${format(data.midValues[(c * rows + row) * cols + col], 3)}. Click or press Enter for its formula.`;
      const show = (position) => { cursor = position; pause(); setInspect(position, text(position), cellRect(rect, rows, cols, ...position)); };
      const button = hit(rect, `Intermediate result ${c + 1}: arrow keys move, Enter opens the formula`, {
        enter: () => show(cursor),
        move: (event) => show(pixelAt(event, rows, cols)),
        keys: (event) => {
          if (event.key === "Enter" || event.key === " ") {
            model.explain = [c, cursor[0], cursor[1], Date.now()];
            return true;
          }
          return arrowMove(event, cursor, rows, cols, (r, k) => show([r, k]));
        },
        activate: (event) => {
          const [row, col] = event.detail ? pixelAt(event, rows, cols) : cursor;
          model.explain = [c, row, col, Date.now()];
        },
      });
      button.dataset.part = "intermediate";
      button.dataset.channel = c;
    });
    const plusRect = { x: g.plus.x - g.plus.r, y: g.plus.y - g.plus.r, w: 2 * g.plus.r, h: 2 * g.plus.r };
    const biasText = `Bias of ${data.layer} neuron ${data.neuron + 1} = ${format(data.bias, 4)}, added after summing the ${channels} intermediate results.`;
    hit(plusRect, biasText, { enter: () => setInspect("bias", biasText, plusRect) }).dataset.part = "bias";
    const output = hit(g.output, `${data.layer} neuron ${data.neuron + 1}, ${rows}×${cols}: arrow keys move between pixels`, {
      enter: () => showOutput(cursor),
      move: (event) => showOutput(pixelAt(event, rows, cols)),
      keys: (event) => arrowMove(event, cursor, rows, cols, (r, k) => showOutput([r, k])),
    });
    output.dataset.part = "output";
  }

  function buildFlattenHits() {
    const g = geometry;
    const [rows, cols] = data.input_size;
    const count = data.values.length;
    const text = (i) => {
      const [row, col, channel] = data.order.slice(3 * i, 3 * i + 3);
      return `${data.source} neuron ${channel + 1}, pixel (${row}, ${col}) → flatten element ${i}: `
        + `${format(data.values[i], 4)} × weight ${format(data.weights[i], 4)} = ${format(data.products[i], 4)}`;
    };
    const show = (i) => setInspect(i, text(i), DOCK);
    let cursor = data.products.reduce((best, v, i, all) => (Math.abs(v) > Math.abs(all[best]) ? i : best), 0);
    g.inputs.forEach((rect, channel) => {
      const at = (row, col) => data.indexOf.get(`${channel},${row},${col}`);
      const button = hit(rect, `${data.source} neuron ${channel + 1}: arrow keys move between pixels`, {
        enter: () => {
          const [row, col, c] = data.order.slice(3 * cursor, 3 * cursor + 3);
          cursor = c === channel ? cursor : at(row, col);
          show(cursor);
        },
        move: (event) => { cursor = at(...pixelAt(event, rows, cols)); show(cursor); },
        keys: (event) => {
          const [row, col] = data.order.slice(3 * cursor, 3 * cursor + 2);
          return arrowMove(event, [row, col], rows, cols, (r, k) => { cursor = at(r, k); show(cursor); });
        },
      });
      button.dataset.part = "map";
      button.dataset.channel = channel;
    });
    const strip = hit(g.strip, `Flatten vector of ${count} elements: arrow keys move by one, Page keys by one pixel`, {
      enter: () => show(cursor),
      move: (event) => {
        const box = event.currentTarget.getBoundingClientRect();
        cursor = Math.min(count - 1, Math.max(0, Math.floor(((event.clientY - box.top) / box.height) * count)));
        show(cursor);
      },
      keys: (event) => {
        const step = { ArrowUp: -1, ArrowDown: 1, PageUp: -data.channels, PageDown: data.channels }[event.key];
        if (!step) return false;
        cursor = Math.max(0, Math.min(count - 1, cursor + step));
        show(cursor);
        return true;
      },
    });
    strip.dataset.part = "strip";
    const plusRect = { x: g.plus.x - g.plus.r, y: g.plus.y - g.plus.r, w: 2 * g.plus.r, h: 2 * g.plus.r };
    const sum = data.products.reduce((a, b) => a + b, 0);
    const biasText = `Sum of ${count} products = ${format(sum, 3)}; plus bias ${format(data.bias, 4)} = ${format(data.score, 3)}.`;
    hit(plusRect, biasText, { enter: () => setInspect("bias", biasText, plusRect) }).dataset.part = "bias";
    const scoreText = `Score (logit) of “${data.class_name}” = ${format(data.score, 4)}. Press Enter for softmax mode.`;
    const score = hit(g.output, scoreText, {
      enter: () => setInspect(null, scoreText, g.output),
      keys: (event) => (event.key === "Enter" ? (openSoftmax(), true) : false),
      activate: openSoftmax,
    });
    score.dataset.part = "score";
  }

  function buildSoftmaxHits() {
    geometry.logits.forEach((circle, i) => {
      const rect = { x: circle.x - circle.r, y: circle.y - circle.r, w: 2 * circle.r, h: 2 * circle.r };
      const text = `${data.classes[i]}: e^${format(data.logits[i], 3)} = ${format(data.exps[i], 3)}; `
        + `${format(data.exps[i], 3)} / ${format(data.total, 3)} = ${(100 * data.probabilities[i]).toFixed(2)}%`;
      const button = hit(rect, text, { enter: () => setInspect(i, text, rect) });
      button.dataset.part = "logit";
      button.dataset.index = i;
    });
  }

  function openSoftmax() {
    model.softmax = [Date.now()];
  }

  // -- wiring -----------------------------------------------------------------------------------------------
  backButton.addEventListener("click", (event) => { keyboard = event.detail === 0; back(); });
  replayButton.addEventListener("click", () => { inspect = null; startSweep(); });
  pauseButton.addEventListener("click", togglePause);
  softmaxButton.addEventListener("click", openSoftmax);
  frame.addEventListener("click", (event) => { if (phase === "open" && !event.target.closest?.(".el-hit")) back(); });

  // Start the transition on the click itself; the server's numbers arrive while it plays.
  const startFromOverview = (event) => {
    if (phase !== "closed") return;
    const button = event.composedPath().find((node) => node.classList?.contains("ov-tile"));
    if (!button || !(button.dataset.layer in model.geometries)) return;
    if (event.type === "keydown" && event.key !== "Enter" && event.key !== " ") return;
    keyboard = event.type === "keydown";
    open(button.dataset.layer, Number(button.dataset.index));
  };
  host.addEventListener("click", startFromOverview);
  host.addEventListener("keydown", startFromOverview);

  const onKey = (event) => {
    if (event.key !== "Escape" || phase === "closed" || phase === "leaving" || model.level !== "elastic") return;
    event.preventDefault();
    keyboard = true;
    back();
  };
  document.addEventListener("keydown", onKey);
  const resize = new ResizeObserver(() => { if (phase !== "closed") measure(); });
  resize.observe(host);
  model.on("remove", () => { document.removeEventListener("keydown", onKey); resize.disconnect(); });

  frame.style.aspectRatio = `${layout().width} / ${layout().height}`;
  loadContext();
  model.on(["context", "palettes"], () => { loadContext(); schedule(); });
  model.on("view", showView);
  hideTooltip();
  if (model.view?.kind) {
    restoring = true;
    showView();
  }
}
