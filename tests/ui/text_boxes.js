// Collected by tests/ui/pages.py text_problems (see its docstring): every text on the page with its boxes.
([rootSelector, popupSelector]) => {
  const deepQuery = (node, selector) => {
    const found = node.querySelector(selector);
    if (found) return found;
    for (const element of node.querySelectorAll("*")) {
      if (element.shadowRoot) { const inner = deepQuery(element.shadowRoot, selector); if (inner) return inner; }
    }
    return null;
  };
  const root = rootSelector ? deepQuery(document, rootSelector) : document.body;
  if (!root) return { error: `nothing matches ${rootSelector}` };
  const parentOf = (node) => node.parentNode instanceof ShadowRoot ? node.parentNode.host : node.parentElement;
  const rect = (r) => ({ left: r.left, top: r.top, right: r.right, bottom: r.bottom });
  const viewport = { left: 0, top: 0, right: document.documentElement.clientWidth, bottom: window.innerHeight };
  let containerIds = new Map();
  const containerOf = (element) => {
    let node = element;
    const MATHML = "http://www.w3.org/1998/Math/MathML";  // a formula is laid out as one piece of text
    const inline = (n) => n.namespaceURI === MATHML || /^inline( flow| math)?$/.test(getComputedStyle(n).display);
    while (node && inline(node)) node = parentOf(node);
    node = node || element;
    if (!containerIds.has(node)) containerIds.set(node, containerIds.size);
    return containerIds.get(node);
  };
  const describe = (element) => {
    const name = element.tagName.toLowerCase() + (element.className && typeof element.className === "string" ? "." + element.className.trim().split(/\s+/).join(".") : "");
    return name;
  };
  // the clipping boxes of an element: ancestors that hide overflow, up to the first one that scrolls on that axis
  // (what lies beyond is reachable); popups (tooltips, cards) must be seen whole, so for them scrollers clip too
  const clipsOf = (element, popup) => {
    const clips = [];
    const scrolled = { x: false, y: false };
    for (let node = parentOf(element); node; node = parentOf(node)) {
      const style = getComputedStyle(node);
      for (const axis of ["x", "y"]) {
        const overflow = style[axis === "x" ? "overflowX" : "overflowY"];
        if (overflow === "visible" || (scrolled[axis] && !popup)) continue;
        if ((overflow === "auto" || overflow === "scroll") && !popup) { scrolled[axis] = true; continue; }
        const box = node.getBoundingClientRect();
        const left = box.left + node.clientLeft, top = box.top + node.clientTop;
        clips.push({ axis, name: describe(node), left, top, right: left + node.clientWidth, bottom: top + node.clientHeight });
      }
    }
    return clips;
  };
  const inScroller = (element) => {
    for (let node = parentOf(element); node; node = parentOf(node)) {
      const style = getComputedStyle(node);
      if (["auto", "scroll"].includes(style.overflowX) && node.scrollWidth > node.clientWidth) return true;
    }
    return false;
  };
  // a bar fixed at the top of the window (the page header): text scrolled under it is out of sight, as scrolled
  // off the window would be
  const bar = document.elementsFromPoint(viewport.right / 2, 1)
    .find((node) => ["fixed", "sticky"].includes(getComputedStyle(node).position));
  const hiddenAbove = (element) => bar && !bar.contains(element) ? bar.getBoundingClientRect().bottom : -Infinity;
  const texts = [];
  const visit = (node, popup) => {
    if (node.nodeType === Node.TEXT_NODE) {
      const value = node.textContent.trim();
      const element = node.parentElement ?? parentOf(node);
      if (!value || !element) return;
      if (!element.checkVisibility({ opacityProperty: true, visibilityProperty: true })) return;
      const range = document.createRange();
      range.selectNodeContents(node);
      const above = hiddenAbove(element);
      const boxes = [...range.getClientRects()].filter((r) => r.width > 0.5 && r.height > 0.5 && r.top >= above)
        .map(rect);
      if (!boxes.length) return;
      const overflowHidden = getComputedStyle(element).overflowX !== "visible";
      texts.push({
        text: value.slice(0, 60), where: describe(element), container: containerOf(element), boxes,
        clips: clipsOf(node.parentElement ?? element, popup), popup, scrolled: inScroller(element),
        cut: overflowHidden && element.scrollWidth > element.clientWidth + 1,
      });
      return;
    }
    if (node.nodeType !== Node.ELEMENT_NODE && !(node instanceof ShadowRoot)) return;
    if (node.nodeType === Node.ELEMENT_NODE) {
      if (["STYLE", "SCRIPT", "TEMPLATE", "NOSCRIPT", "TITLE"].includes(node.tagName)) return;
      if (node.inert || node.hidden) return;
      if (!node.checkVisibility({ opacityProperty: true, visibilityProperty: true }) && getComputedStyle(node).display !== "contents") return;
      popup = popup || (popupSelector && node.matches(popupSelector));
      if (node.shadowRoot) visit(node.shadowRoot, popup);
    }
    for (const child of node.childNodes) visit(child, popup);
  };
  visit(root, popupSelector ? root.matches?.(popupSelector) ?? false : false);
  return { texts, viewport };
}
