// Used by tests/ui/pages.py edge_problems: visible controls with text that touch the window's sides.
([selector, margin]) => {
  const all = [];
  const collect = (root) => { root.querySelectorAll(selector).forEach((n) => all.push(n));
    root.querySelectorAll("*").forEach((n) => n.shadowRoot && collect(n.shadowRoot)); };
  collect(document);
  const width = document.documentElement.clientWidth;
  const parentOf = (n) => n.parentNode instanceof ShadowRoot ? n.parentNode.host : n.parentElement;
  const scrolled = (n) => { for (let p = parentOf(n); p; p = parentOf(p)) {
    if (["auto", "scroll"].includes(getComputedStyle(p).overflowX) && p.scrollWidth > p.clientWidth) return true; }
    return false; };
  const shown = (n) => n.checkVisibility({ visibilityProperty: true }) && n.textContent.trim() && !n.closest("[inert]") && !scrolled(n);
  return all.filter(shown).map((n) => {
    const r = n.getBoundingClientRect();
    return { text: n.textContent.trim().slice(0, 40), left: r.left, right: r.right, width: r.width, window: width };
  }).filter((r) => r.width > 0 && (r.left < margin || r.right > r.window - margin));
}
