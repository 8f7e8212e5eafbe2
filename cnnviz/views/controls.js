// Control-panel widgets that Panel lacks offline: an image gallery of buttons and a drop zone for uploads.
export function render({ model, el }) {
  if (model.kind === "gallery") renderGallery(model, el);
  else renderDropZone(model, el);
}

function renderGallery(model, el) {
  const list = document.createElement("div");
  list.className = "gallery";
  list.setAttribute("role", "listbox");
  list.setAttribute("aria-label", "Example images");
  let buttons = [];
  let asked = "";  // the key last clicked, until the server shows it or chooses another
  // A choice is pending until the server shows it: on a busy server the thumbnail says it is being worked on.
  const mark = () => {
    if (asked === model.shown) asked = "";
    const wanted = asked || model.value;
    const pending = wanted !== model.shown;
    buttons.forEach((button) => {
      const chosen = button.dataset.key === wanted;
      button.setAttribute("aria-selected", chosen);
      button.classList.toggle("pending", chosen && pending);
      button.tabIndex = chosen || (!model.value && button === buttons[0]) ? 0 : -1;
    });
    list.setAttribute("aria-busy", pending);
  };
  const build = () => {
    list.replaceChildren();
    buttons = model.items.map((item, i) => {
      const button = document.createElement("button");
      button.type = "button";
      button.className = "thumb";
      button.dataset.key = item.key;
      button.setAttribute("role", "option");
      button.title = item.caption;
      button.setAttribute("aria-label", item.title);
      const img = document.createElement("img");
      img.src = item.src;
      img.alt = "";
      button.append(img);
      button.addEventListener("click", () => {
        window.cnnvizUpload = null;  // no upload on screen any more (connection.js)
        asked = item.key;
        model.send_msg({ type: "choose", key: item.key });  // a click: at once, not after a debounce
        mark();
      });
      button.addEventListener("keydown", (event) => {
        // up and down move by a row of the grid as it is laid out now (its width follows the screen)
        const perRow = buttons.filter((other) => other.offsetTop === buttons[0].offsetTop).length || 1;
        const step = { ArrowRight: 1, ArrowDown: perRow, ArrowLeft: -1, ArrowUp: -perRow }[event.key];
        if (step) {
          const next = buttons[(i + step + buttons.length) % buttons.length];
          next.focus();
          event.preventDefault();
        }
      });
      list.append(button);
      return button;
    });
    mark();
  };
  build();
  model.on("items", build);
  model.on("value", () => { if (model.value !== asked) asked = ""; mark(); });
  model.on("shown", mark);
  el.append(list);
}

function renderDropZone(model, el) {
  const zone = document.createElement("label");
  zone.className = "dropzone";
  const input = Object.assign(document.createElement("input"), { type: "file", accept: model.accept });
  input.className = "visually-hidden";
  const idleText = "Upload your own image: click or drop a file here";
  const text = Object.assign(document.createElement("span"), { textContent: idleText });
  zone.append(input, text);
  // One file at a time, in pieces the server asks for (BrowserControl in controls.py): it announces name and
  // size, the server refuses an oversized file at once or replies with the offset of the next piece wanted.
  let pending = null;
  model.on("msg:custom", async (reply) => {
    if (!pending || reply.id !== pending.id) return;
    if (reply.done) {
      window.cnnvizUpload = { name: pending.file.name, sending: false };  // what a lost connection loses
      pending = null;
      text.textContent = idleText;
      return;
    }
    const upload = pending;
    const piece = new Uint8Array(await upload.file.slice(reply.next, reply.next + model.chunk_bytes).arrayBuffer());
    if (pending !== upload) return; // a newer file replaced this one
    text.textContent = `Uploading ${upload.file.name}: ${Math.floor((100 * reply.next) / upload.file.size)} %`;
    let binary = "";
    for (let i = 0; i < piece.length; i += 0x8000) binary += String.fromCharCode(...piece.subarray(i, i + 0x8000));
    model.send_msg({ type: "chunk", id: upload.id, data: btoa(binary) });
  });
  const send = (file) => {
    if (!file) return;
    pending = { file, id: `${Date.now()}-${Math.random()}` };
    window.cnnvizUpload = { name: file.name, sending: true };
    model.send_msg({ type: "start", id: pending.id, name: file.name, size: file.size });
  };
  input.addEventListener("change", () => { send(input.files[0]); input.value = ""; });
  zone.addEventListener("dragover", (event) => { event.preventDefault(); zone.classList.add("over"); });
  zone.addEventListener("dragleave", () => zone.classList.remove("over"));
  zone.addEventListener("drop", (event) => {
    event.preventDefault();
    zone.classList.remove("over");
    send(event.dataTransfer.files[0]);
  });
  el.append(zone);
}
