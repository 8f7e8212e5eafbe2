// Formula views: the arithmetic of one step, for every position at once. The server sends the engine's numbers
// for every window (cnnviz/plots/formula.py); this file only indexes them, so hovering, the arrow keys and the
// sweep never wait for the server. `window.cnnvizScrollToSection` comes from the article (prepended by Python).
const SWEEP_SECONDS = 60; // a whole sweep, whatever the map's size, within these step bounds:
const STEP_MS = { fastest: 25, slowest: 150 };
const REPORT_MS = 250; // tell the server where the window rests, once it has stopped moving
const CROP = { input: 7, output: 5, pool: 6 }; // numbers printed around the window: big maps stay readable

// What a "what if?" experiment made of a layer, for the title, the equation and the sentences.
function activation(slope = 0) {
  if (slope === 0) return { kind: "relu", slope, title: "ReLU", rule: (x) => `max(0, ${x})` };
  if (slope === 1) return { kind: "identity", slope, title: "No activation (what if?)", rule: (x) => x };
  const s = Number(slope.toPrecision(3));  // for reading: 0.1, not 0.10000000149
  return { kind: "leaky", slope: s, title: "Leaky ReLU (what if?)", rule: (x) => `max(${s} × ${x}, ${x})` };
}
const POOLING = {
  max: { title: "Max pooling", reduce: "max", kept: "the largest" },
  min: { title: "Min pooling (what if?)", reduce: "min", kept: "the smallest" },
  average: { title: "Average pooling (what if?)", reduce: "mean", kept: "the average" },
};

// Numbers as people read them: a real minus sign, and precision that suits the size.
function format(value, digits = 3) {
  if (!Number.isFinite(value)) return value > 0 ? "∞" : "−∞";
  const text = Math.abs(value) >= 1000 ? value.toPrecision(4) : value.toFixed(digits);
  return text.replace("-", "−");
}

function unpack(buffer) {
  const length = new DataView(buffer).getUint32(0, true);
  const header = JSON.parse(new TextDecoder().decode(new Uint8Array(buffer, 4, length)));
  const start = 4 + length;
  const arrays = {};
  for (const [name, { dtype, shape, offset }] of Object.entries(header.arrays)) {
    const size = shape.reduce((a, b) => a * b, 1);
    const Type = dtype === "uint8" ? Uint8Array : Float32Array;
    arrays[name] = { data: new Type(buffer, start + offset, size), shape };
  }
  return { meta: header, arrays };
}

function element(tag, className, text) {
  const node = document.createElement(tag);
  if (className) node.className = className;
  if (text !== undefined) node.textContent = text;
  return node;
}

function ink(hex) {
  // dark text on light cells, white on dark ones
  const [r, g, b] = [1, 3, 5].map((i) => parseInt(hex.slice(i, i + 2), 16));
  return 0.299 * r + 0.587 * g + 0.114 * b < 140 ? "#fff" : "#111";
}

export function render({ model, el }) {
  const backdrop = element("div", "fv-backdrop");
  backdrop.hidden = true;
  const dialog = element("section", "fv-dialog");
  dialog.setAttribute("role", "dialog");
  dialog.setAttribute("aria-modal", "true");
  dialog.setAttribute("aria-labelledby", "fv-title");
  dialog.tabIndex = -1;
  const head = element("header", "fv-head");
  const title = element("h2", "fv-title");
  title.id = "fv-title";
  const formula = element("div", "fv-formula");
  formula.append(model.get_child("formula"));
  const tools = element("div", "fv-tools");
  const play = element("button", "fv-play", "▶ Play");
  const info = element("button", "fv-info", "i");
  const close = element("button", "fv-close", "×");
  play.type = info.type = close.type = "button";
  info.title = "Read about this layer in the article";
  info.setAttribute("aria-label", info.title);
  close.title = "Close (Esc)";
  close.setAttribute("aria-label", "Close the formula view");
  tools.append(play, info, close);
  head.append(title, tools);
  const hint = element("p", "fv-hint");
  const status = element("p", "fv-status");
  status.setAttribute("aria-live", "polite");
  const body = element("div", "fv-body");
  dialog.append(head, formula, hint, body, status);
  backdrop.append(dialog);
  el.append(backdrop);

  const palettes = model.palettes;
  let view = null; // the current kind's renderer: { size, show(row, col) }
  let data = null;
  let position = [0, 0];
  let timer = null;
  let report = null;

  const color = (name, index) => palettes[data.meta.palettes[name]][index];
  const at = (name, ...index) => {
    const { data: values, shape } = data.arrays[name];
    let flat = 0;
    for (let axis = 0; axis < shape.length; axis++) flat = flat * shape[axis] + (index[axis] ?? 0);
    return values[flat];
  };

  function paint(cell, name, ...index) {
    const hex = color(name, at(`${name}_colors`, ...index));
    cell.style.background = hex;
    cell.style.color = ink(hex);
  }

  // A heatmap of a whole map, drawn at native resolution and scaled up; a box marks the window or cell.
  function heatmap(label, name, onHover, extra = []) {
    const figure = element("figure", "fv-map");
    const caption = element("figcaption", "", label);
    const frame = element("div", "fv-map-frame");
    const canvas = element("canvas");
    const [rows, cols] = data.arrays[name].shape;
    canvas.width = cols;
    canvas.height = rows;
    const image = canvas.getContext("2d").createImageData(cols, rows);
    const rgb = palettes[data.meta.palettes[name]].map((hex) => [1, 3, 5].map((i) => parseInt(hex.slice(i, i + 2), 16)));
    for (let r = 0; r < rows; r++) {
      for (let c = 0; c < cols; c++) image.data.set([...rgb[at(`${name}_colors`, r, c, ...extra)], 255], 4 * (r * cols + c));
    }
    canvas.getContext("2d").putImageData(image, 0, 0);
    const box = element("div", "fv-box");
    frame.append(canvas, box);
    frame.dataset.matrix = name;
    frame.addEventListener("pointermove", (event) => {
      const rect = frame.getBoundingClientRect();
      const row = Math.floor(((event.clientY - rect.top) / rect.height) * rows);
      const col = Math.floor(((event.clientX - rect.left) / rect.width) * cols);
      if (row >= 0 && col >= 0 && row < rows && col < cols) onHover(row, col);
    });
    figure.append(caption, frame);
    const mark = (top, left, height, width) => {
      Object.assign(box.style, {
        top: `${(100 * top) / rows}%`, left: `${(100 * left) / cols}%`,
        height: `${(100 * height) / rows}%`, width: `${(100 * width) / cols}%`,
      });
    };
    return { figure, mark, rows, cols };
  }

  // A small grid of numbers (a crop of a big map, or a whole window / kernel).
  function numbers(rows, cols, className) {
    const grid = element("div", `fv-grid ${className}`);
    grid.style.gridTemplateColumns = `repeat(${cols}, auto)`;
    const cells = [];
    for (let r = 0; r < rows; r++) {
      cells.push([]);
      for (let c = 0; c < cols; c++) {
        const cell = element("span", "fv-cell");
        grid.append(cell);
        cells[r].push(cell);
      }
    }
    return { grid, cells };
  }

  // Fill a crop of map `name` whose top-left is (top, left); cells inside `inside(r, c)` are marked.
  function fillCrop(crop, name, top, left, inside, extra = []) {
    crop.cells.forEach((row, r) => row.forEach((cell, c) => {
      cell.textContent = format(at(name, top + r, left + c, ...extra));
      paint(cell, name, top + r, left + c, ...extra);
      cell.classList.toggle("fv-in", inside(top + r, left + c));
      cell.dataset.row = top + r;
      cell.dataset.col = left + c;
    }));
  }

  const cropStart = (center, size, extent) => Math.max(0, Math.min(extent - size, center - Math.floor(size / 2)));

  function captioned(label, node) {
    const figure = element("figure", "fv-part");
    figure.append(element("figcaption", "", label), node);
    return figure;
  }

  function value(className, label) {
    const node = element("span", `fv-value ${className}`);
    if (label) node.title = label;
    return node;
  }

  function setValue(node, number, hex) {
    node.textContent = format(number);
    node.dataset.value = number;
    if (hex) {
      node.style.background = hex;
      node.style.color = ink(hex);
    }
  }

  // The window of output (row, col) in input coordinates, and the output cell under input (row, col).
  const origin = (row, col) => [row * data.meta.stride[0] + data.meta.offset[0], col * data.meta.stride[1] + data.meta.offset[1]];
  function fromInput(row, col, size) {
    const pick = (value, axis) => Math.max(0, Math.min(size[axis] - 1,
      Math.round((value - data.meta.offset[axis] - (data.meta.window[axis] - 1) / 2) / data.meta.stride[axis])));
    return [pick(row, 0), pick(col, 1)];
  }


  // Input map + crop on the left, output crop + map on the right: hovering either map moves the window.
  // `extra` indexes the output's trailing axes (a conv's per-channel results keep every channel in one array).
  function matrices(outputName, outputLabel, cropSize, extra = []) {
    const size = data.arrays[outputName].shape;
    const input = heatmap(`Input: ${data.meta.input_name}`, "input", (r, c) => move(...fromInput(r, c, size)));
    const output = heatmap(outputLabel, outputName, (r, c) => move(r, c), extra);
    const inputCrop = numbers(cropSize, cropSize, "fv-crop fv-input-crop");
    const outputCrop = numbers(CROP.output, CROP.output, "fv-crop fv-output-crop");
    const row = element("div", "fv-row fv-matrices");
    const cropLabel = element("figcaption");
    const outputCropLabel = element("figcaption");
    const inputFigure = element("figure", "fv-part");
    inputFigure.append(cropLabel, inputCrop.grid);
    const outputFigure = element("figure", "fv-part");
    outputFigure.append(outputCropLabel, outputCrop.grid);
    row.append(input.figure, inputFigure, element("span", "fv-arrow", "→"), outputFigure, output.figure);
    const [kr, kc] = data.meta.window;
    return {
      row,
      show(r, c) {
        const [top, left] = origin(r, c);
        input.mark(top, left, kr, kc);
        output.mark(r, c, 1, 1);
        const cropTop = cropStart(top + (kr >> 1), cropSize, input.rows);
        const cropLeft = cropStart(left + (kc >> 1), cropSize, input.cols);
        fillCrop(inputCrop, "input", cropTop, cropLeft,
          (i, j) => i >= top && i < top + kr && j >= left && j < left + kc);
        cropLabel.textContent = `rows ${cropTop}–${cropTop + cropSize - 1}, columns ${cropLeft}–${cropLeft + cropSize - 1}`;
        const outTop = cropStart(r, CROP.output, output.rows);
        const outLeft = cropStart(c, CROP.output, output.cols);
        fillCrop(outputCrop, outputName, outTop, outLeft, (i, j) => i === r && j === c, extra);
        outputCropLabel.textContent = `rows ${outTop}–${outTop + CROP.output - 1}, columns ${outLeft}–${outLeft + CROP.output - 1}`;
      },
    };
  }

  const VIEWS = {
    conv2d() {
      const { meta } = data;
      const [kr, kc] = meta.window;
      const map = matrices("sums", `This channel's part of ${meta.layer}, neuron ${meta.neuron + 1}`, CROP.input, [meta.channel]);
      const windowGrid = numbers(kr, kc, "fv-window");
      const kernelGrid = numbers(kr, kc, "fv-kernel");
      const productGrid = numbers(kr, kc, "fv-products");
      const total = value("fv-total", "sum of the nine products");
      const arithmetic = element("div", "fv-row fv-arithmetic");
      arithmetic.append(
        captioned("window", windowGrid.grid), element("span", "fv-op", "⊙"),
        captioned("kernel", kernelGrid.grid), element("span", "fv-op", "="),
        captioned("products (input × weight)", productGrid.grid), element("span", "fv-op", "→ Σ ="),
        captioned("this channel's result", total),
      );
      // How the per-channel results join: one term per input channel, plus the bias, is the neuron's value.
      const join = element("div", "fv-row fv-join");
      const joinLabel = element("p", "fv-join-label");
      const terms = element("div", "fv-terms");
      const chips = [];
      for (let channel = 0; channel < meta.channels; channel++) {
        if (channel) terms.append(element("span", "fv-op", "+"));
        const chip = value("fv-chip fv-sum", `channel ${channel + 1}`);
        chip.dataset.channel = channel;
        chip.dataset.label = channel + 1;  // counted from 1 on screen
        chip.classList.toggle("fv-current", channel === meta.channel);
        terms.append(chip);
        chips.push(chip);
      }
      const bias = value("fv-chip fv-bias", "bias");
      setValue(bias, meta.bias, palettes.weights[meta.bias_color]);
      const result = value("fv-chip fv-result", `${meta.layer} neuron ${meta.neuron + 1}`);
      terms.append(element("span", "fv-op", "+ bias"), bias, element("span", "fv-op", "="), result);
      join.append(joinLabel, terms);
      body.append(map.row, arithmetic, join);
      hint.textContent = "Hover over either map to move the window; the arrow keys move it too, space plays or pauses, Esc closes.";
      const [rows, cols] = data.arrays.sums.shape;
      return {
        size: [rows, cols],
        show(r, c) {
          map.show(r, c);
          const [top, left] = origin(r, c);
          for (let u = 0; u < kr; u++) {
            for (let v = 0; v < kc; v++) {
              const x = windowGrid.cells[u][v];
              x.textContent = format(at("input", top + u, left + v));
              paint(x, "input", top + u, left + v);
              const w = kernelGrid.cells[u][v];
              w.textContent = format(at("kernel", u, v));
              paint(w, "kernel", u, v);
              const p = productGrid.cells[u][v];
              p.replaceChildren(
                element("small", "", `${format(at("input", top + u, left + v))} × ${format(at("kernel", u, v))}`),
                element("b", "fv-product", format(at("products", r, c, u, v))),
              );
              p.dataset.value = at("products", r, c, u, v);
              paint(p, "products", r, c, u, v);
            }
          }
          setValue(total, at("sums", r, c, meta.channel), color("sums", at("sums_colors", r, c, meta.channel)));
          chips.forEach((chip, channel) =>
            setValue(chip, at("sums", r, c, channel), color("sums", at("sums_colors", r, c, channel))));
          setValue(result, at("results", r, c), color("results", at("results_colors", r, c)));
          joinLabel.textContent = `Every input channel gives one such result; with the bias they make ${meta.layer}, neuron ${meta.neuron + 1} at row ${r}, column ${c}:`;
          status.textContent = `Window at row ${r}, column ${c}: the nine products sum to ${format(at("sums", r, c, meta.channel))}; the neuron's value there is ${format(at("results", r, c))}.`;
        },
      };
    },

    relu() {
      const { meta } = data;
      const fn = activation(meta.slope);  // leaky, or none at all, under a "what if?" experiment
      const map = matrices("results", `${meta.layer}, channel ${meta.neuron + 1}`, CROP.output);
      const xs = [value("fv-x", "input x")];
      if (fn.kind === "leaky") xs.push(value("fv-x", "input x"));
      const y = value("fv-y", "output y");
      const op = (text) => element("span", "fv-op", text);
      const equation = element("div", "fv-equation");
      if (fn.kind === "relu") equation.append(op("max(0, "), xs[0], op(") ="), y);
      else if (fn.kind === "leaky") equation.append(op(`max(${fn.slope} × `), xs[0], op(", "), xs[1], op(") ="), y);
      else equation.append(xs[0], op("="), y);
      // The function itself, with the current x marked: a fixed shape, no model numbers computed here.
      const extent = Math.max(...data.arrays.input.data.map(Math.abs), 1e-6);
      const plot = document.createElementNS("http://www.w3.org/2000/svg", "svg");
      plot.setAttribute("viewBox", "-1.15 -1.15 2.3 2.3");
      plot.setAttribute("class", "fv-relu-plot");
      plot.innerHTML = `<line x1="-1.1" y1="0" x2="1.1" y2="0" class="fv-axis"/><line x1="0" y1="-1.1" x2="0" y2="1.1" class="fv-axis"/>
        <polyline points="-1,${fn.slope} 0,0 1,-1" class="fv-curve"/><circle r="0.07" class="fv-dot"/>
        <text x="1.1" y="0.2" text-anchor="end">x</text><text x="0.08" y="-0.98">y</text>`;
      const dot = plot.querySelector(".fv-dot");
      const row = element("div", "fv-row fv-arithmetic");
      const caption = fn.kind === "identity" ? "y = x (no activation function)" : `y = ${fn.rule("x")}`;
      row.append(captioned(caption, equation), captioned(`x from −${format(extent, 2)} to ${format(extent, 2)}`, plot));
      body.append(map.row, row);
      hint.textContent = "Hover over either map to pick a cell; the arrow keys move it too, space plays or pauses, Esc closes.";
      return {
        size: data.arrays.results.shape,
        show(r, c) {
          map.show(r, c);
          for (const x of xs) setValue(x, at("input", r, c), color("input", at("input_colors", r, c)));
          setValue(y, at("results", r, c), color("results", at("results_colors", r, c)));
          dot.setAttribute("cx", at("input", r, c) / extent);
          dot.setAttribute("cy", -at("results", r, c) / extent);
          status.textContent = `Row ${r}, column ${c}: ${fn.rule(format(at("input", r, c)))} = ${format(at("results", r, c))}.`;
        },
      };
    },

    maxpool2d() {
      const { meta } = data;
      const [pr, pc] = meta.window;
      const map = matrices("results", `${meta.layer}, channel ${meta.neuron + 1}`, CROP.pool);
      const windowGrid = numbers(pr, pc, "fv-window");
      const terms = element("span", "fv-terms");
      const cells = [];
      for (let i = 0; i < pr * pc; i++) {
        if (i) terms.append(element("span", "fv-op", ","));
        cells.push(value("fv-chip fv-term"));
        terms.append(cells[i]);
      }
      const mode = meta.mode ?? "max";  // a "what if?" experiment may keep the smallest or the average instead
      const { reduce, kept } = POOLING[mode];
      const y = value("fv-chip fv-y", `${kept} value`);
      const equation = element("div", "fv-equation");
      equation.append(element("span", "fv-op", `${reduce}(`), terms, element("span", "fv-op", ") ="), y);
      const row = element("div", "fv-row fv-arithmetic");
      row.append(captioned("window", windowGrid.grid), element("span", "fv-op", "→"), captioned(`y = ${reduce}(window)`, equation));
      body.append(map.row, row);
      hint.textContent = "Hover over either map to move the window; the arrow keys move it too, space plays or pauses, Esc closes.";
      return {
        size: data.arrays.results.shape,
        show(r, c) {
          map.show(r, c);
          const [bestRow, bestCol] = [at("argmax", r, c, 0), at("argmax", r, c, 1)];
          for (let u = 0; u < pr; u++) {
            for (let v = 0; v < pc; v++) {
              const isMax = mode !== "average" && u === bestRow && v === bestCol;  // the average keeps no one cell
              for (const cell of [windowGrid.cells[u][v], cells[u * pc + v]]) {
                setValue(cell, at("windows", r, c, u, v), color("windows", at("windows_colors", r, c, u, v)));
                cell.classList.toggle("fv-max", isMax);
              }
            }
          }
          setValue(y, at("results", r, c), color("results", at("results_colors", r, c)));
          status.textContent = `Window at row ${r}, column ${c}: ${kept} of its ${pr * pc} values is ${format(at("results", r, c))}.`;
        },
      };
    },

    softmax() {
      const { meta } = data;
      const classes = meta.classes;
      // e^z written as a power, with its value underneath
      const power = (j, className = "") => {
        const term = element("span", `fv-exp ${className}`);
        const label = element("span", "fv-exp-power", "e");
        label.append(element("sup", "", format(at("logits", j))));
        const shown = value("fv-exp-value");
        setValue(shown, at("exps", j));
        term.append(label, shown);
        return term;
      };
      const circles = element("div", "fv-row fv-logits");
      const denominator = element("div", "fv-denominator");
      const links = classes.map((name, j) => {
        const circle = element("button", "fv-logit");
        circle.type = "button";
        const dot = element("span", "fv-dot-logit");
        dot.style.background = color("logits", at("logits_colors", j));
        const logit = value("fv-logit-value");
        setValue(logit, at("logits", j));
        circle.append(dot, element("span", "fv-logit-name", name), logit);
        circle.setAttribute("aria-label", `${name}: logit ${format(at("logits", j))}; explain this class`);
        circle.addEventListener("click", () => { model.picked = [j, Date.now()]; });
        circles.append(circle);
        const term = power(j);
        term.dataset.index = j;
        if (j) denominator.append(element("span", "fv-op", "+"));
        denominator.append(term);
        for (const node of [circle, term]) {
          node.classList.toggle("fv-current", j === meta.neuron);
          node.addEventListener("pointerenter", () => move(0, j));
        }
        return [circle, term];
      });
      const fraction = element("div", "fv-fraction");
      const numerator = element("div", "fv-numerator");
      numerator.append(power(meta.neuron, "fv-current"));
      fraction.append(numerator, denominator);
      const equation = element("div", "fv-row fv-softmax");
      equation.append(element("span", "fv-op", `p(${classes[meta.neuron]}) =`), fraction);
      const top = value("fv-top");
      setValue(top, at("exps", meta.neuron));
      const total = value("fv-total", "sum of the exponentials");
      setValue(total, meta.total);
      const probability = value("fv-result", "probability");
      setValue(probability, at("probabilities", meta.neuron));
      const result = element("div", "fv-row fv-softmax-result");
      result.append(element("span", "fv-op", "="), top, element("span", "fv-op", "/"), total, element("span", "fv-op", "="),
        probability, element("span", "fv-percent", `(${(100 * at("probabilities", meta.neuron)).toFixed(1)} %)`));
      body.append(captioned("Logits z: hover a class or a term of the sum and both light up; click a class to explain it", circles),
        equation, result);
      hint.textContent = "The arrow keys move between the terms, Esc closes.";
      return {
        size: [1, classes.length],
        show(_r, j) {
          links.forEach(([circle, term], k) => {
            circle.classList.toggle("fv-linked", k === j);
            term.classList.toggle("fv-linked", k === j);
          });
          status.textContent = `${classes[j]}: e to the power ${format(at("logits", j))} is ${format(at("exps", j))}, ` +
            `its share of the sum is ${format(at("probabilities", j))}.`;
        },
      };
    },
  };

  function move(row, col) {
    if (!view) return;
    const [rows, cols] = view.size;
    position = [Math.max(0, Math.min(rows - 1, row)), Math.max(0, Math.min(cols - 1, col))];
    view.show(...position);
    el.dataset.position = position.join(",");
    if (timer === null && data.meta.kind !== "softmax") {
      clearTimeout(report);
      report = setTimeout(tell, REPORT_MS);
    }
  }

  function tell() {
    if (view && (position[0] !== model.position[0] || position[1] !== model.position[1])) model.position = [...position];
  }

  function stop() {
    if (timer === null) return;
    clearInterval(timer);
    timer = null;
    play.textContent = "▶ Play";
    play.setAttribute("aria-pressed", "false");
    tell();
  }

  function toggle() {
    if (timer !== null) return stop();
    if (!view || data.meta.kind === "softmax") return;
    const [rows, cols] = view.size;
    if (position[0] === rows - 1 && position[1] === cols - 1) position = [0, -1];
    clearTimeout(report); // the sweep reports only where it stops
    play.textContent = "❚❚ Pause";
    play.setAttribute("aria-pressed", "true");
    const step = Math.min(STEP_MS.slowest, Math.max(STEP_MS.fastest, (1000 * SWEEP_SECONDS) / (rows * cols)));
    timer = setInterval(() => {
      const [r, c] = position;
      if (r === rows - 1 && c === cols - 1) return stop();
      if (c + 1 < cols) move(r, c + 1); else move(r + 1, 0);
    }, step);
  }

  function shut() {
    stop();
    model.closed = [Date.now()];
  }

  // Focus goes back where it came from when the dialog closes (e.g. the overview neuron that opened it).
  let opener = null;
  const deepActive = () => {
    let active = document.activeElement;
    while (active && active.shadowRoot && active.shadowRoot.activeElement) active = active.shadowRoot.activeElement;
    return active;
  };

  function build() {
    stop();
    body.replaceChildren();
    view = null;
    if (!model.payload || model.payload.byteLength === 0) return;
    data = unpack(model.payload);
    const { meta } = data;
    const names = {
      conv2d: "Convolution",
      relu: activation(meta.slope).title,
      maxpool2d: POOLING[meta.mode ?? "max"].title,
      softmax: "Softmax",
    };
    const what = meta.kind === "conv2d" ? `${meta.layer}, neuron ${meta.neuron + 1}, input channel ${meta.channel + 1}`
      : meta.kind === "softmax" ? `class “${meta.classes[meta.neuron]}”` : `${meta.layer}, channel ${meta.neuron + 1}`;
    title.textContent = `${names[meta.kind]} · ${what}`;
    dialog.dataset.kind = meta.kind;
    play.hidden = meta.kind === "softmax";
    view = VIEWS[meta.kind]();
    move(...(meta.kind === "softmax" ? [0, meta.neuron] : model.position));
  }

  function sync() {
    const wasOpen = !backdrop.hidden;
    backdrop.hidden = !model.open;
    if (model.open && !wasOpen) {
      opener = deepActive();
      dialog.focus({ preventScroll: true });
    } else if (!model.open && wasOpen) {
      stop();
      if (opener && opener.isConnected) opener.focus({ preventScroll: true });
    }
  }

  play.addEventListener("click", toggle);
  close.addEventListener("click", shut);
  info.addEventListener("click", () => {
    const found = window.cnnvizScrollToSection && window.cnnvizScrollToSection(model.section);
    if (!found) {
      status.textContent = "The article is not on this page.";
      return;
    }
    opener = null;  // the focus stays on the article heading, not on the neuron that opened the view
    shut();
  });
  backdrop.addEventListener("click", (event) => { if (event.target === backdrop) shut(); });
  dialog.addEventListener("keydown", (event) => {
    const steps = { ArrowUp: [-1, 0], ArrowDown: [1, 0], ArrowLeft: [0, -1], ArrowRight: [0, 1] };
    if (event.key in steps && view) {
      stop();
      move(position[0] + steps[event.key][0], position[1] + steps[event.key][1]);
    } else if (event.key === " " && event.target.tagName !== "BUTTON") {
      toggle();
    } else if (event.key === "Escape") {
      shut();
    } else if (event.key === "Tab") {
      if (!keepFocusInside(event.shiftKey)) return;
    } else {
      return;
    }
    event.preventDefault();
    event.stopPropagation(); // the views underneath have their own Esc and arrow keys
  });

  // A modal dialog: Tab cycles through its own controls instead of wandering behind the backdrop.
  function keepFocusInside(backwards) {
    const controls = [...dialog.querySelectorAll("button, [tabindex='0']")].filter((node) => node.getClientRects().length);
    if (!controls.length) return false;
    const [first, last] = [controls[0], controls[controls.length - 1]];
    const active = deepActive();
    if (backwards && (active === first || active === dialog)) last.focus();
    else if (!backwards && active === last) first.focus();
    else return false;
    return true;
  }
  // Should the focus be outside all the same (a click elsewhere), Esc still closes the dialog.
  const escapeAnywhere = (event) => { if (event.key === "Escape" && !backdrop.hidden) shut(); };
  document.addEventListener("keydown", escapeAnywhere);
  model.on("remove", () => document.removeEventListener("keydown", escapeAnywhere));

  let pending = false;
  const rebuild = () => {
    // payload, position and open arrive together; build once after all of them are in
    if (pending) return;
    pending = true;
    queueMicrotask(() => { pending = false; build(); sync(); });
  };
  model.on("payload", rebuild);
  model.on("open", sync);
  model.on("position", () => {
    const [row, col] = model.position;
    if (view && timer === null && (row !== position[0] || col !== position[1])) move(row, col);
  });
  build();
  sync();
}
