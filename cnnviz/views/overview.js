// Overview overlay: draws what must react instantly (edges, highlights, focus ring, readout) in the browser,
// on top of the Bokeh heatmaps, in the same data coordinates. Every neuron is a real, focusable button.
const SVG_NS = "http://www.w3.org/2000/svg";

function svg(tag, attrs) {
  const node = document.createElementNS(SVG_NS, tag);
  for (const [key, value] of Object.entries(attrs)) node.setAttribute(key, value);
  return node;
}

// A real minus sign, and no "−0.00": a value that rounds to zero is written without a sign.
function format(value) {
  const digits = Math.abs(value) >= 100 ? 0 : Math.abs(value) >= 10 ? 1 : 2;
  const text = value.toFixed(digits);
  return /^-[0.]*$/.test(text) ? text.slice(1) : text.replace("-", "−");
}

export function render({ model, el }) {
  const status = document.createElement("div");
  status.className = "ov-readout";
  status.setAttribute("aria-live", "polite");
  const scroller = document.createElement("div");
  scroller.className = "ov-scroll";
  const frame = document.createElement("div");
  frame.className = "ov-frame";
  const plot = document.createElement("div");
  plot.className = "ov-plot";
  plot.append(model.get_child("plot"));
  const drawing = svg("svg", { class: "ov-svg", preserveAspectRatio: "none", "aria-hidden": "true" });
  const edges = svg("g", { class: "ov-edges" });
  const marks = svg("g", { class: "ov-marks" });
  drawing.append(edges, marks);
  const grid = document.createElement("div");
  grid.className = "ov-grid";
  grid.setAttribute("role", "group");
  grid.setAttribute("aria-label", "Network overview: use the arrow keys to move between neurons and Enter to open one");
  frame.append(plot, drawing, grid);
  scroller.append(frame);
  const hint = document.createElement("p");
  hint.className = "ov-hint";
  el.append(status, scroller, hint);

  let buttons = [];  // buttons[column][neuron]
  let focus = [1, 0];
  const idle = "Hover over a neuron, or Tab into the network and use the arrow keys, to see its values.";

  const place = (node, x, y, w, h) => {
    const { width, height } = model.layout;
    node.style.left = `${(100 * x) / width}%`;
    node.style.top = `${(100 * y) / height}%`;
    node.style.width = `${(100 * w) / width}%`;
    node.style.height = `${(100 * h) / height}%`;
  };

  const columns = () => model.layout.columns;
  const tileHeight = (column) => (column.kind === "output" ? model.layout.bar_height : model.layout.tile);
  const tileTop = (column, i) => column.tops[i] + (model.layout.tile - tileHeight(column)) / 2;

  // A hidden layer's map with no value but zero for this image (a "dead" ReLU or what pools it).
  const isDead = (column, i) => {
    if (column.kind === "output" || column.kind === "input") return false;
    const [min, max] = model.stats[column.name][i];
    return min === 0 && max === 0;
  };

  function describe(c, i) {
    const column = columns()[c];
    const [min, max, mean] = model.stats[column.name][i];
    if (column.kind === "output") {
      return `${model.classes[i]}: probability ${(100 * max).toFixed(1)} percent`;
    }
    if (isDead(column, i)) return `${column.name}, neuron ${i + 1} of ${column.tops.length}: all zero for this image`;
    const what = column.kind === "input" ? `${["red", "green", "blue"][i] ?? "channel " + i} channel` : `neuron ${i + 1} of ${column.tops.length}`;
    return `${column.name}, ${what}: min ${format(min)}, max ${format(max)}, mean ${format(mean)}`;
  }

  function sources(c, i) {
    if (c === 0) return [];
    const column = columns()[c];
    const previous = columns()[c - 1];
    const everyInput = column.kind === "conv2d" || column.kind === "output";
    return everyInput ? previous.tops.map((_, j) => j) : [i];
  }

  function outline(column, i, cls) {
    return svg("rect", {
      class: cls, x: column.x, y: tileTop(column, i), width: column.width, height: tileHeight(column),
      "vector-effect": "non-scaling-stroke",
    });
  }

  function highlight(c, i) {
    edges.replaceChildren();
    marks.querySelectorAll(".ov-hover").forEach((node) => node.remove());
    if (c === null) {
      status.textContent = idle;
      return;
    }
    const column = columns()[c];
    const targetY = tileTop(column, i) + tileHeight(column) / 2;
    if (c > 0) {
      const previous = columns()[c - 1];
      for (const j of sources(c, i)) {
        const x0 = previous.x + previous.width, y0 = previous.tops[j] + model.layout.tile / 2, x1 = column.x;
        const mid = (x0 + x1) / 2;
        edges.append(svg("path", { d: `M${x0},${y0} C${mid},${y0} ${mid},${targetY} ${x1},${targetY}`, class: "ov-edge", "vector-effect": "non-scaling-stroke" }));
        marks.append(outline(previous, j, "ov-hover ov-source"));
      }
    }
    marks.append(outline(column, i, "ov-hover ov-target"));
    status.textContent = describe(c, i);
  }

  function showSelected() {
    marks.querySelectorAll(".ov-selected").forEach((node) => node.remove());
    const [name, index] = model.selected;
    const c = columns().findIndex((column) => column.name === name);
    if (c >= 0) marks.append(outline(columns()[c], index, "ov-selected"));
  }

  function moveFocus(c, i) {
    c = Math.max(0, Math.min(columns().length - 1, c));
    i = Math.max(0, Math.min(columns()[c].tops.length - 1, i));
    buttons[focus[0]][focus[1]].tabIndex = -1;
    focus = [c, i];
    const button = buttons[c][i];
    button.tabIndex = 0;
    button.focus();
  }

  function pick(c, i) {
    model.picked = [columns()[c].name, i, Date.now()];
  }

  function onKey(event, c, i) {
    const moves = { ArrowUp: [0, -1], ArrowDown: [0, 1], ArrowLeft: [-1, 0], ArrowRight: [1, 0], Home: [-c, 0], End: [columns().length, 0] };
    if (event.key in moves) {
      const [dc, di] = moves[event.key];
      const target = Math.max(0, Math.min(columns().length - 1, c + dc));
      // keep the same neuron when the neighbouring column has it, else the closest one
      moveFocus(target, dc === 0 ? i + di : Math.min(i, columns()[target].tops.length - 1));
      event.preventDefault();
    } else if (event.key === "Enter" || event.key === " ") {
      pick(c, i);
      event.preventDefault();
    }
  }

  function buildLabels() {
    frame.querySelectorAll(".ov-label, .ov-legend").forEach((node) => node.remove());
    for (const [index, column] of columns().entries()) {
      const label = document.createElement("button");
      label.className = "ov-label";
      label.type = "button";
      label.dataset.layer = column.name;
      const shape = column.shape.join("×");
      const name = document.createElement("span");
      name.textContent = column.name;
      label.append(name);
      if (model.details) {
        const small = document.createElement("small");
        small.textContent = shape;
        label.append(small);
      }
      label.title = `Read about the ${column.name} layer in the article`;
      label.setAttribute("aria-label", `${column.name} layer, shape ${shape}: read about it in the article`);
      label.addEventListener("click", () => {
        const anchor = model.sections[column.kind];
        if (anchor && window.cnnvizScrollToSection) window.cnnvizScrollToSection(anchor);  // from the article
        model.jumped = [anchor ?? "", Date.now()];
      });
      // the label may use the room up to half-way to each neighbouring column (its CSS shrinks the text to fit)
      const center = column.x + column.width / 2;
      const neighbours = [columns()[index - 1], columns()[index + 1]].filter(Boolean);
      const room = Math.min(...neighbours.map((other) => Math.abs(other.x + other.width / 2 - center)));
      const half = Math.max(column.width / 2 + 0.3, room / 2);
      const left = Math.max(0, center - half);
      const right = Math.min(model.layout.width, center + half);
      place(label, left, 0, right - left, model.layout.label_height);
      frame.append(label);
    }
    if (!model.details) return;
    for (const legend of model.legends) {
      const box = document.createElement("div");
      box.className = "ov-legend";
      box.style.setProperty("--gradient", `linear-gradient(to right, ${legend.colors.join(", ")})`);
      const bar = document.createElement("div");
      bar.className = "ov-legend-bar";
      const ticks = document.createElement("div");
      ticks.className = "ov-legend-ticks";
      for (const tick of [legend.low, legend.middle, legend.high]) {
        const span = document.createElement("span");
        span.textContent = tick;
        ticks.append(span);
      }
      box.append(bar, ticks);
      box.title = legend.title;
      place(box, legend.x0, model.layout.height - 0.85, legend.x1 - legend.x0, 0.8);
      frame.append(box);
    }
    fitTicks();
  }

  // A legend as narrow as one column has no room for three numbers: keep the two ends, which give the range.
  function fitTicks() {
    for (const ticks of frame.querySelectorAll(".ov-legend-ticks")) {
      const spans = [...ticks.children];
      spans.forEach((span) => { span.hidden = false; });
      const needed = spans.reduce((sum, span) => sum + span.getBoundingClientRect().width, 0) + 6 * (spans.length - 1);
      if (needed > ticks.clientWidth && spans.length > 2) spans[1].hidden = true;
    }
  }

  function buildGrid() {
    grid.replaceChildren();
    buttons = columns().map((column, c) =>
      column.tops.map((_, i) => {
        const button = document.createElement("button");
        button.type = "button";
        button.className = column.kind === "output" ? "ov-tile ov-class" : "ov-tile";
        button.tabIndex = c === focus[0] && i === focus[1] ? 0 : -1;
        button.dataset.layer = column.name;
        button.dataset.index = i;
        if (column.kind === "output") {
          const name = document.createElement("span");
          name.className = "ov-class-name";
          name.textContent = model.classes[i];
          const value = document.createElement("span");
          value.className = "ov-class-value";
          button.append(name, value);
        }
        place(button, column.x, column.tops[i], column.width, model.layout.tile);
        button.addEventListener("mouseenter", () => highlight(c, i));
        button.addEventListener("mouseleave", () => highlight(null));
        button.addEventListener("focus", () => { focus = [c, i]; highlight(c, i); });
        button.addEventListener("blur", () => highlight(null));
        button.addEventListener("click", () => pick(c, i));
        button.addEventListener("keydown", (event) => onKey(event, c, i));
        grid.append(button);
        return button;
      })
    );
    refreshText();
  }

  function refreshText() {
    const output = columns().length - 1;
    const probabilities = model.stats[columns()[output].name].map((row) => row[0]);
    const best = probabilities.indexOf(Math.max(...probabilities));
    buttons.forEach((row, c) => row.forEach((button, i) => {
      button.setAttribute("aria-label", describe(c, i));
      if (c === output) {
        button.querySelector(".ov-class-value").textContent = `${(100 * probabilities[i]).toFixed(1)}%`;
        button.classList.toggle("ov-predicted", i === best);
      }
      button.classList.toggle("ov-dead", isDead(columns()[c], i));
    }));
    showHint();
    if (grid.contains(el.getRootNode().activeElement)) highlight(...focus); else status.textContent = idle;
  }

  function showHint() {
    const dead = columns().some((column) => column.tops.some((_, i) => isDead(column, i)));
    const pale = model.color_mode === "layer"
      ? "Each layer has its own colour range."
      : "Pale maps hold values that are small next to the largest one in their colour range: choose Layer to give each layer its own range.";
    hint.textContent = `${dead ? "Hatched maps are all zero for this image. " : ""}${pale}`;
  }

  function resize() {
    const { width, height } = model.layout;
    drawing.setAttribute("viewBox", `0 0 ${width} ${height}`);
    frame.style.aspectRatio = `${width} / ${height}`;
  }

  resize();
  buildGrid();
  buildLabels();
  showSelected();
  model.on("layout", () => { resize(); buildGrid(); buildLabels(); showSelected(); });
  model.on("color_mode", showHint);
  model.on("stats", refreshText);
  model.on(["details", "legends"], buildLabels);
  model.on("selected", showSelected);
  const resized = new ResizeObserver(fitTicks);
  resized.observe(frame);
  model.on("remove", () => resized.disconnect());
}
