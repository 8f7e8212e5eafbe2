// In Jupyter, Panel's comm sends every change of an output's document to the kernel, including the changes the
// kernel has just sent (BokehJS marks those `sync: false`, and its own server connection skips them). Such an
// echo can arrive after a newer change and put the older value back, so only the browser's own changes go out.
(function withoutEchoes(attempt) {
  const manager = window.Bokeh?.Models?.["panel.models.comm_manager.CommManager"];
  const view = manager?.prototype.default_view?.prototype;
  if (view == null) {
    if (attempt < 100) setTimeout(() => withoutEchoes(attempt + 1), 100); // Panel's JavaScript is still loading
    return;
  }
  if (view.cnnvizWithoutEchoes) return;
  const sendToKernel = view._document_changed;
  view._document_changed = function (event) {
    if (event.sync !== false) sendToKernel.call(this, event);
  };
  view.cnnvizWithoutEchoes = true;
})(0);
