// Glue between the Jupyter widget renderer (@jupyter-widgets/html-manager) and the book.
// Loaded after require.js and before embed-amd.js (conf.py: nb_ipywidgets_js).
(function () {
  // The renderer finds its fonts next to its own module URL: point that at _static/html-manager
  // (the page's content root comes from Sphinx's data-content_root attribute).
  if (window.require && window.require.config) {
    var root = document.documentElement.dataset.content_root || "";
    window.require.config({paths: {"@jupyter-widgets/html-manager/dist": root + "_static/html-manager"}});
  }
  // Widget labels are typeset through MathJax 2's MathJax.Hub.Queue; the book runs MathJax 3.
  document.addEventListener("DOMContentLoaded", function () {
    var mj = window.MathJax;
    if (!mj || mj.Hub || !mj.startup || !mj.startup.promise) return;
    mj.Hub = {
      Queue: function () {
        var elements = Array.prototype.slice.call(arguments)
          .map(function (job) { return Array.isArray(job) ? job[2] : null; })
          .filter(function (el) { return el instanceof Element; });
        mj.startup.promise = mj.startup.promise.then(function () {
          return elements.length ? mj.typesetPromise(elements) : null;
        });
      },
    };
  });
})();
