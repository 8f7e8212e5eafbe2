// Guided tour: a spotlight on one part of the page at a time, with a short card beside it.
// Targets live in other components' shadow roots, so they are found by a deep selector search.
const SEEN_KEY = "cnnviz-tour-seen";

function seen() {
  try { return window.localStorage.getItem(SEEN_KEY) === "yes"; } catch { return false; }
}

function remember() {
  try { window.localStorage.setItem(SEEN_KEY, "yes"); } catch { /* private mode: ask again next time */ }
}

function element(tag, props = {}) {
  return Object.assign(document.createElement(tag), props);
}

export function render({ model, el }) {
  const go = (step) => model.send_msg({ step });  // to Python at once: a click, not a debounced property
  const launcher = element("button", { type: "button", className: "tour-launcher", textContent: "Take the tour" });
  el.append(launcher);
  const spotlight = element("div", { className: "tour-spotlight" });
  const card = element("div", { className: "tour-card", tabIndex: -1 });
  card.setAttribute("role", "dialog");
  card.setAttribute("aria-labelledby", "tour-title");
  const progress = element("div", { className: "tour-progress" });
  const title = element("h2", { id: "tour-title" });
  const text = element("p");
  const buttons = element("div", { className: "tour-buttons" });
  const skip = element("button", { type: "button", className: "tour-skip", textContent: "Skip tour" });
  const back = element("button", { type: "button", textContent: "Back" });
  const next = element("button", { type: "button", className: "tour-next" });
  buttons.append(skip, back, next);
  card.append(progress, title, text, buttons);
  // The card must float above every other part of the page, so it lives at the top of the document (in its
  // own shadow root, styled by the same sheet), not inside the header's stacking context.
  const portal = element("div", { className: "cnnviz-tour" });
  portal.attachShadow({ mode: "open" }).append(element("style", { textContent: model.card_css }), spotlight, card);
  document.body.append(portal);
  model.on("remove", () => portal.remove());

  let timer = null;

  function place() {
    const step = model.steps[model.step];
    if (!step) return;
    const target = deepQuery(document, step.selector);
    card.style.visibility = "visible";
    if (!target || !target.getBoundingClientRect().width) {  // not on screen (yet): centre the card, no spotlight
      spotlight.style.display = "none";
      Object.assign(card.style, { left: "50%", top: "30%", transform: "translateX(-50%)" });
      return;
    }
    const box = target.getBoundingClientRect();
    const pad = 6;
    spotlight.style.display = "block";
    Object.assign(spotlight.style, {
      left: `${box.left - pad}px`, top: `${box.top - pad}px`, width: `${box.width + 2 * pad}px`, height: `${box.height + 2 * pad}px`,
    });
    const cardWidth = Math.min(340, window.innerWidth - 24);
    Object.assign(card.style, { transform: "none", width: `${cardWidth}px` });
    const height = card.offsetHeight;  // measured at its final width: the buttons must stay on screen
    const left = Math.max(12, Math.min(box.left, window.innerWidth - cardWidth - 12));
    const below = box.bottom + 14 + height + 12 <= window.innerHeight;
    const above = box.top - 14 - height >= 12;
    const top = below ? box.bottom + 14 : above ? box.top - 14 - height : window.innerHeight - height - 12;
    Object.assign(card.style, { left: `${left}px`, top: `${Math.max(12, top)}px` });
  }

  function show() {
    const open = model.step >= 0 && model.step < model.steps.length;
    card.hidden = !open;
    if (!open) {  // place() shows the spotlight with an inline display, which the hidden attribute cannot beat
      clearTimeout(timer);
      spotlight.style.display = "none";
      return;
    }
    const step = model.steps[model.step];
    progress.textContent = `Step ${model.step + 1} of ${model.steps.length}`;
    title.textContent = step.title;
    text.textContent = step.text;
    back.disabled = model.step === 0;
    next.textContent = model.step === model.steps.length - 1 ? "Done" : "Next";
    const target = deepQuery(document, step.selector);
    if (target) target.scrollIntoView({ block: "center", behavior: "instant" });
    card.style.visibility = "hidden";
    clearTimeout(timer);
    timer = setTimeout(() => { place(); card.focus(); }, 60);  // let the page settle after scrolling or a view change
  }

  function close() {
    remember();
    go(-1);
    launcher.focus();
  }

  launcher.addEventListener("click", () => go(0));
  skip.addEventListener("click", close);
  back.addEventListener("click", () => go(Math.max(0, model.step - 1)));
  next.addEventListener("click", () => (model.step >= model.steps.length - 1 ? close() : go(model.step + 1)));
  card.addEventListener("keydown", (event) => {
    if (event.key === "ArrowRight") next.click();
    else if (event.key === "ArrowLeft" && !back.disabled) back.click();
  });
  // Esc ends the tour wherever the focus is (it is briefly on the page while a step moves the card), and before
  // any view below sees the key: the tour restores the learner's view itself.
  const onEscape = (event) => {
    if (event.key !== "Escape" || card.hidden) return;
    event.stopPropagation();
    event.preventDefault();
    close();
  };
  window.addEventListener("keydown", onEscape, true);
  model.on("remove", () => window.removeEventListener("keydown", onEscape, true));
  window.addEventListener("resize", place);
  window.addEventListener("scroll", place, true);
  model.on("step", show);
  model.on("steps", show);
  model.on("refresh", () => setTimeout(place, 80));
  show();
  if (model.auto_start && !seen() && model.step < 0) setTimeout(() => { if (!seen()) go(0); }, 600);
}
