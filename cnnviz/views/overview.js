// Keyboard, focus, hover and labels over the overview plot. Every box, text and connection arrives from Python
// (model.geometry, model.readouts, ...); clicks and taps go through to the plot underneath (a HoloViews Tap stream).
const SVG_NS = "http://www.w3.org/2000/svg";

function make(tag, className, parent, attributes = {}, svg = false) {
  const node = svg ? document.createElementNS(SVG_NS, tag) : document.createElement(tag);
  if (className) node.setAttribute("class", className);
  for (const [key, value] of Object.entries(attributes)) node.setAttribute(key, value);
  if (parent) parent.append(node);
  return node;
}

export function render({ model, el }) {
  const status = make("div", "ov-readout", el, { "aria-live": "polite" });
  const frame = make("div", "ov-frame", make("div", "ov-scroll", el));
  make("div", "ov-plot", frame).append(model.get_child("plot"));
  const svg = () => make("svg", "ov-svg", frame, { preserveAspectRatio: "none", "aria-hidden": "true" }, true);
  const [mesh, selection, drawing] = [svg(), svg(), svg()];  // connections at rest; the selection; the pointer's
  const grid = make("div", "ov-grid", frame, { role: "group" });
  const hint = make("p", "ov-hint", el);
  let [buttons, focus, shown] = [[], 0, -1];  // shown: the neuron whose edges are drawn, -1 for none

  const place = (node, x, y, w, h) => {
    const { width, height } = model.geometry;
    Object.assign(node.style, { left: `${(100 * x) / width}%`, top: `${(100 * y) / height}%`,
      width: `${(100 * w) / width}%`, height: `${(100 * h) / height}%` });
  };
  const outline = ([x, y, width, height], name, parent = drawing) =>
    make("rect", name, parent, { x, y, width, height }, true);
  const select = () => selection.replaceChildren(...model.outline.map((box) => outline(box, "ov-selected", null)));

  // Edges into neuron k from its inputs, outlines, and the readout: purely visual, no round trip.
  function show(k) {
    shown = k;
    drawing.replaceChildren();
    if (k < 0) { status.textContent = model.idle; return; }
    const neurons = model.geometry.neurons;
    const [x1, top, , height] = neurons[k].box;
    const y1 = top + height / 2;
    for (const j of model.geometry.sources[k]) {
      const [x, y, w, h] = neurons[j].box;
      const x0 = x + w, y0 = y + h / 2, mid = (x0 + x1) / 2;
      make("path", "ov-edge", drawing, { d: `M${x0},${y0} C${mid},${y0} ${mid},${y1} ${x1},${y1}` }, true);
      outline(neurons[j].box, "ov-source");
    }
    outline(neurons[k].box, "ov-target");
    status.textContent = model.readouts[k];
  }

  function neuronAt(event) {
    const rect = frame.getBoundingClientRect();
    const x = ((event.clientX - rect.left) / rect.width) * model.geometry.width;
    const y = ((event.clientY - rect.top) / rect.height) * model.geometry.height;
    return model.geometry.neurons.findIndex(({ box: [left, top, w, h] }) => x >= left && x <= left + w && y >= top && y <= top + h);
  }
  frame.addEventListener("pointermove", (event) => { const k = neuronAt(event); if (k !== shown) show(k); });
  frame.addEventListener("pointerleave", () => show(-1));
  function onKey(event, k) {
    const columns = model.geometry.columns;
    const c = columns.findIndex((members) => members.includes(k));
    const i = columns[c].indexOf(k);
    const moves = { ArrowUp: [0, -1], ArrowDown: [0, 1], ArrowLeft: [-1, 0], ArrowRight: [1, 0], Home: [-c, 0], End: [columns.length, 0] };
    if (event.key in moves) {
      const [dc, di] = moves[event.key];
      const target = columns[Math.max(0, Math.min(columns.length - 1, c + dc))];
      buttons[focus].tabIndex = -1;
      focus = target[Math.max(0, Math.min(target.length - 1, i + di))];  // the same neuron, or the closest
      buttons[focus].tabIndex = 0;
      buttons[focus].focus();
    } else if (event.key === "Enter" || event.key === " ") {
      model.send_msg({ pick: k });
    } else return;
    event.preventDefault();
  }

  function build() {
    grid.setAttribute("aria-label", model.aria);
    buttons = model.geometry.neurons.map((neuron, k) => {
      const button = make("button", neuron.class, grid, { type: "button", tabindex: k === focus ? 0 : -1,
        "data-layer": neuron.layer, "data-index": neuron.index });
      if (neuron.name) make("span", "ov-class-name", button).textContent = neuron.name;
      if (neuron.name) make("span", "ov-class-value", button);
      if (neuron.caption) make("span", "ov-caption", button).textContent = neuron.caption;
      place(button, ...neuron.box);
      button.addEventListener("focus", () => { focus = k; show(k); });
      button.addEventListener("blur", () => show(-1));
      button.addEventListener("keydown", (event) => onKey(event, k));
      return button;
    });
    const { width, height } = model.geometry;
    for (const layer of [mesh, selection, drawing]) layer.setAttribute("viewBox", `0 0 ${width} ${height}`);
    const lines = model.geometry.mesh.map(([x0, y0, x1, y1]) => `M${x0},${y0}L${x1},${y1}`);
    make("path", "ov-mesh", mesh, { d: lines.join("") }, true);
    Object.assign(frame.style, { aspectRatio: `${width} / ${height}`, minWidth: `${model.geometry.min_width}px` });
  }

  function texts() {
    buttons.forEach((button, k) => {
      button.setAttribute("aria-label", model.readouts[k]);
      const value = button.querySelector(".ov-class-value");
      if (value) value.textContent = model.values[k];
      button.classList.remove(...Object.keys(model.marked));
    });
    for (const [name, members] of Object.entries(model.marked)) members.forEach((k) => buttons[k].classList.add(name));
    hint.textContent = model.hint;
    if (shown >= 0) show(shown); else status.textContent = model.idle;
  }

  // Layer labels (with details: shapes and colour legends); a label jumps to its article section.
  function labels() {
    frame.querySelectorAll(".ov-label, .ov-legend").forEach((node) => node.remove());
    for (const label of model.labels) {
      const button = make("button", "ov-label", frame, { type: "button", "data-layer": label.text, title: label.title,
        "aria-label": label.aria });
      make("span", "", button).textContent = label.text;
      if (label.shape) make("small", "", button).textContent = label.shape;
      button.addEventListener("click", () => window.cnnvizScrollToSection?.(label.anchor));
      place(button, ...label.box);
    }
    for (const legend of model.legends.filter((legend) => model.details || legend.always)) {
      const box = make("div", "ov-legend", frame, { title: legend.title });
      box.style.setProperty("--gradient", `linear-gradient(to right, ${legend.colors.join(", ")})`);
      make("div", "ov-legend-bar", box);
      const ticks = make("div", "ov-legend-ticks", box);
      for (const tick of [legend.low, legend.middle, legend.high]) make("span", "", ticks).textContent = tick;
      place(box, ...legend.box);
    }
  }

  build();
  texts();
  labels();
  select();
  model.on("outline", select);
  model.on(["readouts", "values", "marked", "hint"], texts);
  model.on(["labels", "legends", "details"], labels);
}
