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
  const info = document.createElement("button");
  info.type = "button";
  info.className = "el-info";
  info.textContent = "i";
  info.title = "Read about this in the article";
  info.setAttribute("aria-label", info.title);
  bar.append(back, title, info);
  el.append(bar);
  info.addEventListener("click", () => {
    if (!window.cnnvizScrollToSection?.(model.section)) info.title = "The article is not on this page.";
  });

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
    info.hidden = !model.section;
  };
  // A view opened from low on a scrolled page (a class at the foot of the overview, on a phone) starts above the
  // window: bring its top back into view, under whatever bar stays fixed at the top of the window.
  const reveal = () => {
    const top = bar.getBoundingClientRect().top;
    const fixed = document.elementsFromPoint(innerWidth / 2, 1)
      .find((node) => ["fixed", "sticky"].includes(getComputedStyle(node).position));
    const below = fixed ? fixed.getBoundingClientRect().bottom : 0;
    bar.style.scrollMarginTop = `${below + 8}px`;  // the page may scroll in an inner container: let the browser
    if (top < below || top > innerHeight) bar.scrollIntoView({ block: "start" });  // find it
  };
  const focusWhenOpened = () => {
    if (model.active) requestAnimationFrame(() => { reveal(); title.focus({ preventScroll: true }); });
  };
  model.on("heading", () => { show(); if (model.active) requestAnimationFrame(reveal); });  // another view in place
  model.on("section", show);
  model.on("active", focusWhenOpened);
  model.on("remove", () => document.removeEventListener("keydown", onKey));
  show();
  focusWhenOpened();
}
