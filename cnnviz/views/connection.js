// Connection status for the served page (ReloadFromUrl in controls.py): an alert while the server is out of
// reach, a status line once the page is back, each saying whether an upload was lost with the connection.
const RECONNECTED = "cnnviz-reconnected";  // sessionStorage: the reload that follows a drop

function notice(role, text) {
  const box = document.createElement("div");
  box.className = "cnnviz-connection";
  box.setAttribute("role", role);
  box.style.cssText = "position:fixed;top:8px;left:50%;transform:translateX(-50%);z-index:10000;max-width:90vw;" +
    "padding:8px 14px;border-radius:6px;font:15px/1.4 system-ui,sans-serif;box-shadow:0 2px 8px #0004;" +
    (role === "alert" ? "background:#fdecea;color:#8a1c1c;border:1px solid #f5c2c0;"
                      : "background:#e8f5e9;color:#1b5e20;border:1px solid #a5d6a7;");
  const words = document.createElement("span");
  words.textContent = text;
  const close = document.createElement("button");
  close.type = "button";
  close.textContent = "×";
  close.setAttribute("aria-label", "Dismiss");
  close.style.cssText = "margin-left:12px;border:0;background:none;font-size:18px;cursor:pointer;color:inherit;";
  close.addEventListener("click", () => box.remove());
  box.append(words, close);
  document.body.append(box);
  return box;
}

// An uploaded image lives only in its session: the URL cannot carry it, so a new session starts without it.
function uploadSentence(upload) {
  if (!upload) return "";
  if (upload.sending) return ` Your upload of ${upload.name} was lost with it; please choose the file again.`;
  return ` The image you uploaded (${upload.name}) was lost with it; upload it again to keep using it.`;
}

export function render({ model }) {
  const back = sessionStorage.getItem(RECONNECTED);
  if (back !== null) {
    sessionStorage.removeItem(RECONNECTED);
    const upload = JSON.parse(back).upload;
    const text = "Connected to the server again; the page is back where it was." + uploadSentence(upload);
    const box = notice("status", text);
    setTimeout(() => box.remove(), 15000);
  }
  model.document.on_event("connection_lost", () => {
    const upload = window.cnnvizUpload || null;  // set by the drop zone (controls.js)
    notice("alert", "The connection to the server is lost; trying to reconnect…" + uploadSentence(upload));
    const script = document.querySelector("script[src*='bokeh']");  // a static file: no new session per try
    const retry = () => fetch(script.src, { method: "HEAD", cache: "no-store" })
      .then(() => {
        sessionStorage.setItem(RECONNECTED, JSON.stringify({ upload }));
        location.reload();
      }, () => setTimeout(retry, 1000));
    retry();
  });
  let shown = location.search;  // the query of the view on screen: Panel pushes one per change
  window.addEventListener("popstate", () => { if (location.search !== shown) location.reload(); });
  // A URL that differs from the current one only in the window's position (`window_keys`: pointing at a map)
  // replaces the history entry instead of adding one, so Back leaves the view in one step.
  const onlyMoved = (url) => {
    const next = new URL(url, location.href);
    if (next.pathname !== location.pathname) return false;
    const now = new URLSearchParams(location.search);
    let moved = false;
    for (const key of new Set([...now.keys(), ...next.searchParams.keys()])) {
      if (now.get(key) === next.searchParams.get(key)) continue;
      if (!model.window_keys.includes(key)) return false;
      moved = true;
    }
    return moved;
  };
  const push = history.pushState.bind(history);
  const replace = history.replaceState.bind(history);
  history.replaceState = (...args) => { replace(...args); shown = location.search; };
  history.pushState = (state, title, url) => {
    (url != null && onlyMoved(url) ? replace : push)(state, title, url);
    shown = location.search;
  };
}
