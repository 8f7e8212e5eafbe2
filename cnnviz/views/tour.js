// Guided tour: a spotlight on one part of the page at a time, with a short card beside it.
// Targets live in other components' shadow roots, so they are found by a deep selector search.
const SEEN_KEY = "cnnviz-tour-seen";

function seen() {
  try { return window.localStorage.getItem(SEEN_KEY) === "yes"; } catch { return false; }
}

function remember() {
  try { window.localStorage.setItem(SEEN_KEY, "yes"); } catch { /* private mode: ask again next time */ }
}

export function render({ model, el }) {
  const launcher = document.createElement("button");
  launcher.type = "button";
  launcher.className = "tour-launcher";
  launcher.textContent = "Take the tour";
  el.append(launcher);

  const spotlight = document.createElement("div");
  spotlight.className = "tour-spotlight";
  const card = document.createElement("div");
  card.className = "tour-card";
  card.setAttribute("role", "dialog");
  card.setAttribute("aria-labelledby", "tour-title");
  card.tabIndex = -1;
  const progress = document.createElement("div");
  progress.className = "tour-progress";
  const title = document.createElement("h2");
  title.id = "tour-title";
  const text = document.createElement("p");
  const buttons = document.createElement("div");
  buttons.className = "tour-buttons";
  const skip = Object.assign(document.createElement("button"), { type: "button", className: "tour-skip", textContent: "Skip tour" });
  const back = Object.assign(document.createElement("button"), { type: "button", textContent: "Back" });
  const next = Object.assign(document.createElement("button"), { type: "button", className: "tour-next" });
  buttons.append(skip, back, next);
  card.append(progress, title, text, buttons);
  // The card must float above every other part of the page, so it lives at the top of the document (in its
  // own shadow root, styled by the same sheet), not inside the header's stacking context.
  const portal = document.createElement("div");
  portal.className = "cnnviz-tour";
  const layer = portal.attachShadow({ mode: "open" });
  const style = document.createElement("style");
  style.textContent = model.card_css;
  layer.append(style, spotlight, card);
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
    model.step = -1;
    launcher.focus();
  }

  launcher.addEventListener("click", () => { model.step = 0; });
  skip.addEventListener("click", close);
  back.addEventListener("click", () => { model.step = Math.max(0, model.step - 1); });
  next.addEventListener("click", () => {
    if (model.step >= model.steps.length - 1) close(); else model.step = model.step + 1;
  });
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
  if (model.auto_start && !seen() && model.step < 0) setTimeout(() => { if (!seen()) model.step = 0; }, 600);
}
