// 项目库 project page: the "record an event" form posts one wire-format event to /api/events
// (JSON, with the session's CSRF token from <body hx-headers>), then reloads the page.
// Messages are written with textContent: reasons may quote data.
(function () {
  "use strict";

  function csrfToken() {
    try { return JSON.parse(document.body.getAttribute("hx-headers") || "{}")["X-CSRF-Token"] || ""; } catch (e) { return ""; }
  }

  function newId() {
    if (window.crypto && window.crypto.randomUUID) { return "web-" + window.crypto.randomUUID(); }
    var a = new Uint32Array(4);
    window.crypto.getRandomValues(a);
    return "web-" + Array.prototype.map.call(a, function (n) { return n.toString(16); }).join("-");
  }

  function number(form, name) {
    var v = form.elements[name].value;
    return v === "" ? null : Number(v);
  }

  function payloadOf(form, type) {
    var p = {};
    var text = function (name) { return form.elements[name].value.trim(); };
    if (type === "funds_arrived") {
      p.amount_wan = number(form, "amount_wan");
      p.currency = form.elements.currency.value;
    } else if (type === "landed") {
      if (text("parcel_id")) { p.parcel_id = text("parcel_id"); }
      if (text("factory_id")) { p.factory_id = text("factory_id"); }
      if (number(form, "land_area_mu") !== null) { p.land_area_mu = number(form, "land_area_mu"); }
    } else if (type === "retracted") {
      p.event_id = text("target");
      if (text("reason")) { p.reason = text("reason"); }
    } else if (type === "cancelled") {
      if (text("reason")) { p.reason = text("reason"); }
    }
    return p;
  }

  function showFields(form) {
    var type = form.elements.type.value;
    form.querySelectorAll("[data-for]").forEach(function (el) {
      el.hidden = el.getAttribute("data-for").split(" ").indexOf(type) < 0;
    });
  }

  function init() {
    var box = document.getElementById("post-event");
    var form = document.getElementById("event-form");
    var status = document.getElementById("event-status");
    if (!box || !form) { return; }
    box.hidden = false;
    showFields(form);
    form.elements.type.addEventListener("change", function () { showFields(form); });
    form.addEventListener("submit", function (e) {
      e.preventDefault();
      var type = form.elements.type.value;
      var event = {
        event_id: newId(),
        project_id: box.getAttribute("data-project-id"),
        type: type,
        occurred_at: form.elements.occurred_at.value,
        payload: payloadOf(form, type)
      };
      status.textContent = "…";
      fetch("/api/events", {
        method: "POST",
        credentials: "same-origin",
        headers: { "Content-Type": "application/json", "X-CSRF-Token": csrfToken() },
        body: JSON.stringify(event)
      }).then(function (r) {
        return r.json().then(function (body) { return { ok: r.ok, status: r.status, body: body }; });
      }).then(function (res) {
        if (res.ok) {
          window.location.reload();
        } else {
          var detail = res.body && res.body.detail;
          status.textContent = res.status + ": " + (typeof detail === "string" ? detail : JSON.stringify(detail));
          status.className = "error";
        }
      }).catch(function (err) { status.textContent = String(err); status.className = "error"; });
    });
  }

  document.addEventListener("DOMContentLoaded", init);
})();
