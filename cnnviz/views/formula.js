// The formula dialog's frame: what only the browser can do. It knows nothing about networks: the title, the body
// (Panel panes built in Python) and every number arrive from Python, and it sends back what the person asked
// for: {action: "close" | "play" | "move" (rows, cols) | "pick" (index)}.
// - a modal dialog: role, focus kept inside (Tab wraps), focus given back on close, Esc, click outside;
// - keys: arrows move the window (or, on a [data-pick] button, go to the next one), space plays or pauses;
// - fading in and out.

const FOCUSABLE = "button:not([disabled]), select:not([disabled]), input:not([disabled]), a[href], [tabindex='0']";
const FADE_MS = 160;

function element(tag, className, props = {}) {
  return Object.assign(document.createElement(tag), { className }, props);
}

// Every visible focusable element under `root`, in document order, through Panel's shadow roots.
function focusables(root) {
  const found = [];
  const walk = (node) => {
    for (const child of node.children) {
      if (child.matches(FOCUSABLE) && !child.classList.contains("fv-sentinel") && child.getClientRects().length) {
        found.push(child);
      }
      if (child.shadowRoot) walk(child.shadowRoot);
      walk(child);
    }
  };
  walk(root);
  return found;
}

function deepActive() {
  let active = document.activeElement;
  while (active && active.shadowRoot && active.shadowRoot.activeElement) active = active.shadowRoot.activeElement;
  return active;
}

export function render({ model, el }) {
  const backdrop = element("div", "fv-backdrop", { hidden: true });
  const dialog = element("section", "fv-dialog", { tabIndex: -1 });
  dialog.setAttribute("role", "dialog");
  dialog.setAttribute("aria-modal", "true");
  dialog.setAttribute("aria-labelledby", "fv-title");
  const head = element("header", "fv-head");
  const title = element("h2", "fv-title", { id: "fv-title" });
  const play = element("button", "fv-play", { type: "button" });
  const speed = element("select", "");
  speed.setAttribute("aria-label", "Windows per second while playing");
  const speedLabel = element("label", "fv-speed", { textContent: "Speed " });
  speedLabel.append(speed);
  const info = element("button", "fv-info", { type: "button", textContent: "i" });
  info.title = "Read about this layer in the article";
  info.setAttribute("aria-label", info.title);
  const close = element("button", "fv-close", { type: "button", textContent: "×", title: "Close (Esc)" });
  close.setAttribute("aria-label", "Close the formula view");
  const tools = element("div", "fv-tools");
  tools.append(play, speedLabel, info, close);
  head.append(title, tools);
  const notice = element("p", "fv-notice");
  notice.setAttribute("aria-live", "polite");
  dialog.append(head, model.get_child("body"), notice);
  const [start, end] = [0, 1].map(() => element("span", "fv-sentinel", { tabIndex: 0 }));
  backdrop.append(start, dialog, end);
  el.append(backdrop);

  const send = (message) => model.send_msg(message);
  const shut = () => send({ action: "close" });

  function showHeading() {
    title.textContent = model.heading;
    dialog.dataset.kind = model.kind;
  }
  function showPlaying() {
    play.hidden = speedLabel.hidden = !model.playable;
    play.textContent = model.playing ? "❚❚ Pause" : "▶ Play";
    play.setAttribute("aria-pressed", String(model.playing));
  }
  function showSpeeds() {
    speed.replaceChildren(...model.speeds.map((value) => new Option(`${value} / s`, String(value))));
    speed.value = String(model.speed);
  }

  // Open and close with a short fade; the focus goes back where it came from (e.g. the neuron that opened it).
  let opener = null, hiding = null;
  function showOpen() {
    const shown = !backdrop.hidden && backdrop.classList.contains("fv-shown");
    if (model.open && !shown) {
      clearTimeout(hiding);
      opener = deepActive();
      backdrop.hidden = false;
      requestAnimationFrame(() => backdrop.classList.add("fv-shown"));
      dialog.focus({ preventScroll: true });
    } else if (!model.open && !backdrop.hidden) {
      backdrop.classList.remove("fv-shown");
      hiding = setTimeout(() => { backdrop.hidden = true; }, FADE_MS);
      if (opener && opener.isConnected) opener.focus({ preventScroll: true });
      opener = null;
    }
  }

  play.addEventListener("click", () => send({ action: "play" }));
  speed.addEventListener("change", () => { model.speed = Number(speed.value); });
  close.addEventListener("click", shut);
  info.addEventListener("click", () => {
    const found = window.cnnvizScrollToSection?.(model.section);
    if (!found) { notice.textContent = "The article is not on this page."; return; }
    opener = null; // the focus stays on the article heading, not on the neuron that opened the view
    shut();
  });
  backdrop.addEventListener("click", (event) => {
    if (event.target === backdrop) return shut();
    const pick = event.composedPath().find((node) => node.dataset && node.dataset.pick !== undefined);
    if (pick) send({ action: "pick", index: Number(pick.dataset.pick) });
  });

  // A modal dialog: Tab past the last control comes back to the first, Shift+Tab the other way round.
  start.addEventListener("focus", () => focusables(dialog).at(-1)?.focus());
  end.addEventListener("focus", () => focusables(dialog)[0]?.focus());

  const STEPS = { ArrowUp: [-1, 0], ArrowDown: [1, 0], ArrowLeft: [0, -1], ArrowRight: [0, 1] };
  dialog.addEventListener("keydown", (event) => {
    const target = event.composedPath()[0];
    if (event.key in STEPS) {
      if (target.tagName === "SELECT") return;
      const picks = focusables(dialog).filter((node) => node.dataset.pick !== undefined);
      if (picks.includes(target)) { // a row of choices (softmax classes): the arrows go along it
        const next = picks.indexOf(target) + STEPS[event.key][1] + STEPS[event.key][0];
        picks[Math.max(0, Math.min(picks.length - 1, next))].focus();
      } else {
        send({ action: "move", rows: STEPS[event.key][0], cols: STEPS[event.key][1] });
      }
    } else if (event.key === " " && !["BUTTON", "SELECT"].includes(target.tagName) && model.playable) {
      send({ action: "play" });
    } else if (event.key === "Escape") {
      shut();
    } else {
      return;
    }
    event.preventDefault();
    event.stopPropagation(); // the views underneath have their own Esc and arrow keys
  });
  // Should the focus be outside all the same (a click elsewhere), Esc still closes the dialog.
  const escapeAnywhere = (event) => { if (event.key === "Escape" && model.open) shut(); };
  document.addEventListener("keydown", escapeAnywhere);
  model.on("remove", () => document.removeEventListener("keydown", escapeAnywhere));

  model.on(["heading", "kind"], showHeading);
  model.on(["playing", "playable"], showPlaying);
  model.on("speed", () => { speed.value = String(model.speed); });
  model.on("open", showOpen);
  showHeading();
  showSpeeds();
  showPlaying();
  showOpen();
}
