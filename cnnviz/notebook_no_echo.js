// In Jupyter, Panel's comm sends every change of an output's document to the kernel, including the changes the
// kernel has just sent (BokehJS marks those `sync: false`, and its own server connection skips them). Such an
// echo can arrive after a newer change and put the older value back, so only the browser's own changes go out.
(function withoutEchoes(attempt) {
  const manager = window.Bokeh?.Models?.["panel.models.comm_manager.CommManager"]?.prototype;
  if (manager == null) {
    if (attempt < 100) setTimeout(() => withoutEchoes(attempt + 1), 100); // Panel's JavaScript is still loading
    return;
  }
  if (manager.cnnvizWithoutEchoes) return;
  const sendToKernel = manager._document_changed;
  manager._document_changed = function (event) {
    if (event.sync !== false) sendToKernel.call(this, event);
  };
  manager.cnnvizWithoutEchoes = true;
})(0);
