// The elastic view's frame: a Back button, a heading that takes the focus when a view opens, and Esc.
// It knows nothing about the network: the heading comes from Python, and it only ever reports "back".
export function render({ model, el }) {
  const bar = document.createElement("div");
  bar.className = "el-bar";
  const back = document.createElement("button");
  back.type = "button";
  back.className = "el-back";
  back.textContent = "← Back";
  back.setAttribute("aria-label", "Back to the overview (Esc)");
  const title = document.createElement("h2");
  title.className = "el-title";
  title.tabIndex = -1; // focusable from script, so a keyboard user starts reading the view here
  bar.append(back, title);
  el.append(bar);

  const goBack = () => model.send_msg({ action: "back" });
  back.addEventListener("click", goBack);
  const onKey = (event) => {
    if (event.key !== "Escape" || !model.active || event.defaultPrevented) return;
    event.preventDefault();
    goBack();
  };
  document.addEventListener("keydown", onKey);

  const show = () => {
    title.textContent = model.heading;
  };
  const focusWhenOpened = () => {
    if (model.active) requestAnimationFrame(() => title.focus({ preventScroll: true }));
  };
  model.on("heading", show);
  model.on("active", focusWhenOpened);
  model.on("remove", () => document.removeEventListener("keydown", onKey));
  show();
  focusWhenOpened();
}
