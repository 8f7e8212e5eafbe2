// Find the first element matching `selector` anywhere on the page, through open shadow roots (Panel renders
// every component in its own). Prepended by Python to the components that need it.
function deepQuery(root, selector) {
  const direct = root.querySelector(selector);
  if (direct) return direct;
  for (const node of root.querySelectorAll("*")) {
    if (node.shadowRoot) {
      const found = deepQuery(node.shadowRoot, selector);
      if (found) return found;
    }
  }
  return null;
}
