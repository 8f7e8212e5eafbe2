// A switch whose words are its label: a click or tap on them toggles it (LabelledSwitch in controls.py).
export function render({ model, el }) {
  const label = document.createElement("label");
  const box = Object.assign(document.createElement("input"), { type: "checkbox", checked: model.value });
  box.setAttribute("role", "switch");
  const words = document.createElement("span");
  words.textContent = model.label;
  label.append(box, words);
  box.addEventListener("change", () => { model.value = box.checked; });
  model.on("value", () => { box.checked = model.value; });
  model.on("label", () => { words.textContent = model.label; });
  el.append(label);
}
