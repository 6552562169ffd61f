// Span selection over highlighted text: reports the selected character range to Python.
//
// Python renders the text (app/rendering.py) as runs <span data-o="N"> whose N is the run's offset
// in the Python string; label badges carry no data-o. The offset of a selection boundary is the
// offset of the last run before it plus the code points of that run's text up to it. Counting code
// points ([...s].length), not UTF-16 units (s.length), is what makes offsets after an emoji agree
// with Python's str indices.
//
// Number keys 1..data.labels (pressed outside any input field, without modifiers) report "label":
// Python picks the label shown at that place for new spans.
const codePoints = (text) => [...text].length;

function boundaryOffset(root, container, offset) {
  const prefix = document.createRange();
  prefix.setStart(root, 0);
  prefix.setEnd(container, offset);
  const runs = prefix.cloneContents().querySelectorAll("[data-o]");
  if (runs.length === 0) return 0;
  const last = runs[runs.length - 1];
  return Number(last.dataset.o) + codePoints(last.textContent);
}

export default function (component) {
  const { data, parentElement, setTriggerValue } = component;
  let root = parentElement.querySelector(".ner-selector");
  if (!root) {
    root = document.createElement("div");
    root.className = "ner-selector";
    parentElement.appendChild(root);
  }
  root.innerHTML = data.html;
  // Streamlit may call this function again on the same element: drop the previous listeners first,
  // or every selection and click would be reported twice.
  if (root.nerCleanup) root.nerCleanup();

  const onMouseUp = () => {
    const selection = window.getSelection();
    if (!selection || selection.isCollapsed || selection.rangeCount === 0) return;
    const range = selection.getRangeAt(0);
    if (!root.contains(range.startContainer) || !root.contains(range.endContainer)) return;
    const start = boundaryOffset(root, range.startContainer, range.startOffset);
    const end = boundaryOffset(root, range.endContainer, range.endOffset);
    selection.removeAllRanges();
    if (end > start) setTriggerValue("selection", { start, end });
  };
  const onClick = (event) => {
    const mark = event.target.closest("mark[data-span]");
    if (mark && window.getSelection().isCollapsed) setTriggerValue("clicked", Number(mark.dataset.span));
  };
  const onKeyDown = (event) => {
    if (event.ctrlKey || event.metaKey || event.altKey || event.repeat) return;
    const target = event.target;
    if (target && (target.isContentEditable || /^(INPUT|TEXTAREA|SELECT)$/.test(target.tagName))) return;
    const number = Number(event.key);
    if (Number.isInteger(number) && number >= 1 && number <= (data.labels || 0)) {
      event.preventDefault();
      setTriggerValue("label", number);
    }
  };
  const page = root.ownerDocument;
  root.addEventListener("mouseup", onMouseUp);
  root.addEventListener("click", onClick);
  page.addEventListener("keydown", onKeyDown);
  root.nerCleanup = () => {
    root.removeEventListener("mouseup", onMouseUp);
    root.removeEventListener("click", onClick);
    page.removeEventListener("keydown", onKeyDown);
    root.nerCleanup = null;
  };
  return root.nerCleanup;
}
