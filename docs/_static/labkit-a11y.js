// labkit book: accessible names and roles that the theme and docutils get wrong (axe-core's
// label-content-name-mismatch, aria-deprecated-role, aria-required-children; tests/test_a11y.py).
document.addEventListener("DOMContentLoaded", () => {
  // An accessible name must contain the visible text: the search button reads "Search Ctrl+K",
  // each fold "Show code cell source" (the theme names them "Search", "Toggle hidden content").
  const nameFromText = el => {
    const text = (el.innerText || el.textContent).replace(/\s+/g, " ").trim();
    if (text) el.setAttribute("aria-label", text);
  };
  document.querySelectorAll(".search-button__button, summary").forEach(el => {
    nameFromText(el);
    if (el.tagName === "SUMMARY") el.parentElement.addEventListener("toggle", () => nameFromText(el));
  });
  // docutils marks citations role="doc-biblioentry", which ARIA 1.2 deprecates; they are the
  // items of a role="list", so they become plain list items.
  document.querySelectorAll('[role="doc-biblioentry"]').forEach(el => el.setAttribute("role", "listitem"));
});
