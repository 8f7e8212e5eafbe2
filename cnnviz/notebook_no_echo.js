// In Jupyter, Panel's comm sends every change of an output's document to the kernel, including the changes the
// kernel has just sent (BokehJS marks those `sync: false`, and its own server connection skips them). Such an
// echo can arrive after a newer change and put the older value back, so only the browser's own changes go out
// (a second run wraps the wrapper: harmless).
(function withoutEchoes(attempt) {
  const manager = window.Bokeh?.Models?.["panel.models.comm_manager.CommManager"]?.prototype;
  // Panel's JavaScript may still be loading
  if (manager == null) return attempt < 100 && setTimeout(() => withoutEchoes(attempt + 1), 100);
  const sendToKernel = manager._document_changed;
  manager._document_changed = function (event) { if (event.sync !== false) sendToKernel.call(this, event); };
})(0);
