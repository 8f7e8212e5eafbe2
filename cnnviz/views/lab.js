// Paint on the 64×64 input: the strokes draw in the browser at once; on pointer-up the whole image goes to the
// server (64×64×3 bytes, base64), which runs the network on it.
const SIZE = 64;

function decode(base64) {
  const text = atob(base64);
  const bytes = new Uint8ClampedArray(text.length);
  for (let i = 0; i < text.length; i++) bytes[i] = text.charCodeAt(i);
  return bytes;
}

function encode(rgba) {
  let text = "";
  for (let i = 0; i < rgba.length; i += 4) text += String.fromCharCode(rgba[i], rgba[i + 1], rgba[i + 2]);
  return btoa(text);
}

export function render({ model, el }) {
  const canvas = document.createElement("canvas");
  canvas.width = canvas.height = SIZE;
  canvas.className = "lab-canvas";
  canvas.setAttribute("aria-label", "The network's 64×64 input: drag to paint on it");
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
    const rgb = decode(model.image);
    const pixels = context.createImageData(SIZE, SIZE);
    for (let i = 0, j = 0; i < rgb.length; i += 3, j += 4) {
      pixels.data.set(rgb.subarray(i, i + 3), j);
      pixels.data[j + 3] = 255;
    }
    context.putImageData(pixels, 0, 0);
  }

  let painting = false;
  function dab(event) {
    const box = canvas.getBoundingClientRect();
    const size = Number(brush.value);
    const x = Math.floor(((event.clientX - box.left) / box.width) * SIZE - size / 2 + 0.5);
    const y = Math.floor(((event.clientY - box.top) / box.height) * SIZE - size / 2 + 0.5);
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
    model.painted = encode(context.getImageData(0, 0, SIZE, SIZE).data);
  });

  model.on("image", show);
  show();
  el.append(canvas, tools);
}
