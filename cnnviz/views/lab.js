// Paint on the network's input: the strokes draw in the browser at once; on pointer-up the whole image goes to the
// server (rows × cols × channels bytes, base64), which runs the network on it. Sizes and words come from Python.
function decode(base64) {
  const text = atob(base64);
  const bytes = new Uint8ClampedArray(text.length);
  for (let i = 0; i < text.length; i++) bytes[i] = text.charCodeAt(i);
  return bytes;
}

function encode(rgba, channels) { // a grey input keeps the red channel: the colour picker paints in grey then
  let text = "";
  for (let i = 0; i < rgba.length; i += 4) text += String.fromCharCode(...rgba.subarray(i, i + channels));
  return btoa(text);
}

export function render({ model, el }) {
  const [rows, cols] = model.size;
  const canvas = Object.assign(document.createElement("canvas"), { width: cols, height: rows, className: "lab-canvas" });
  canvas.setAttribute("aria-label", model.label);
  const context = canvas.getContext("2d");
  const tools = document.createElement("div");
  tools.className = "lab-paint-tools";
  const color = Object.assign(document.createElement("input"), { type: "color", value: "#ffffff", title: "Brush colour" });
  const brush = document.createElement("select");
  brush.title = "Brush size";
  for (const size of [1, 3, 5, 9]) brush.append(new Option(`${size} px`, size, size === 3, size === 3));
  tools.append(color, brush);

  function show() {
    if (!model.image) return;
    const values = decode(model.image), step = model.channels;
    const pixels = context.createImageData(cols, rows);
    for (let i = 0, j = 0; i < values.length; i += step, j += 4) {
      pixels.data.set(step === 3 ? values.subarray(i, i + 3) : [values[i], values[i], values[i]], j);
      pixels.data[j + 3] = 255;
    }
    context.putImageData(pixels, 0, 0);
  }

  let painting = false;
  function dab(event) {
    const box = canvas.getBoundingClientRect();
    const size = Number(brush.value);
    const x = Math.floor(((event.clientX - box.left) / box.width) * cols - size / 2 + 0.5);
    const y = Math.floor(((event.clientY - box.top) / box.height) * rows - size / 2 + 0.5);
    context.fillStyle = color.value;
    context.fillRect(x, y, size, size);
  }
  canvas.addEventListener("pointerdown", (event) => {
    painting = true;
    canvas.setPointerCapture(event.pointerId);
    dab(event);
  });
  canvas.addEventListener("pointermove", (event) => painting && dab(event));
  canvas.addEventListener("pointerup", () => {
    if (!painting) return;
    painting = false;
    model.painted = encode(context.getImageData(0, 0, cols, rows).data, model.channels);
  });

  model.on("image", show);
  show();
  el.append(canvas, tools);
}
