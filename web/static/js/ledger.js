// 台账导入: HTMX swaps only 2xx answers by default; a refused file (413/415/422), a changed log (409)
// or an unknown upload (404) comes back as an explanation for the result panel, so show it there.
document.body.addEventListener("htmx:beforeSwap", (event) => {
  const status = event.detail.xhr.status;
  const target = event.detail.target;
  if ([404, 409, 413, 415, 422].includes(status) && target && target.id === "ledger-result") {
    event.detail.shouldSwap = true;
    event.detail.isError = false;
  }
});
