// Leaflet maps of the workspace, configured by data attributes (no inline script: the CSP forbids it).
//   <div class="map" data-map data-geojson-url="/api/..."></div>   or   data-geojson='{"type": ...}'
//   data-pick="#near" : clicking the map writes "lon,lat" lines into that textarea (the match form).
// Feature properties: label (popup text), href (link in the popup), color, kind. Text goes in as
// text (textContent), never as HTML: names come from data.
(function () {
  "use strict";
  var maps = [];

  function popup(props) {
    var box = document.createElement("div");
    var title = document.createElement(props.href ? "a" : "strong");
    title.textContent = props.label || props.id || "";
    if (props.href) { title.href = props.href; }
    box.appendChild(title);
    (props.lines || []).forEach(function (line) {
      var p = document.createElement("div");
      p.textContent = line;
      box.appendChild(p);
    });
    return box;
  }

  function draw(map, layer, data) {
    layer.clearLayers();
    var geo = L.geoJSON(data, {
      style: function (f) { return { color: (f.properties && f.properties.color) || "#1f5fa8", weight: 2, fillOpacity: 0.35 }; },
      pointToLayer: function (f, latlng) {
        return L.circleMarker(latlng, { radius: 7, color: (f.properties && f.properties.color) || "#b3261e", fillOpacity: 0.8 });
      },
      onEachFeature: function (f, l) { if (f.properties) { l.bindPopup(popup(f.properties)); } }
    });
    geo.addTo(layer);
    var bounds = geo.getBounds();
    if (bounds.isValid()) { map.fitBounds(bounds, { maxZoom: 16, padding: [10, 10] }); }
  }

  function init(el) {
    if (el._zsMap) { return el._zsMap; }
    var map = L.map(el, { attributionControl: false }).setView([30, 110], 5);
    var layer = L.layerGroup().addTo(map);
    el._zsMap = { map: map, layer: layer };
    maps.push(el._zsMap);
    if (el.dataset.geojson) { draw(map, layer, JSON.parse(el.dataset.geojson)); }
    if (el.dataset.geojsonUrl) { load(el, el.dataset.geojsonUrl); }
    if (el.dataset.pick) {
      var picks = L.layerGroup().addTo(map);
      map.on("click", function (e) {
        var target = document.querySelector(el.dataset.pick);
        if (!target) { return; }
        var line = e.latlng.lng.toFixed(6) + "," + e.latlng.lat.toFixed(6);
        target.value = (target.value ? target.value.replace(/\s+$/, "") + "\n" : "") + line;
        L.circleMarker(e.latlng, { radius: 6, color: "#2e7d32" }).addTo(picks);
      });
    }
    el.setAttribute("data-ready", "1");
    return el._zsMap;
  }

  function load(el, url) {
    var m = init(el);
    el.removeAttribute("data-loaded");
    return fetch(url, { credentials: "same-origin", headers: { "Accept": "application/geo+json, application/json" } })
      .then(function (r) { if (!r.ok) { throw new Error(r.status); } return r.json(); })
      .then(function (data) { draw(m.map, m.layer, data); el.setAttribute("data-loaded", "1"); })
      .catch(function (err) { el.setAttribute("data-error", String(err)); });
  }

  function scan(root) {
    (root || document).querySelectorAll("[data-map]").forEach(init);
  }

  window.zsMap = { init: init, load: load, scan: scan };
  document.addEventListener("DOMContentLoaded", function () { scan(document); });
  document.addEventListener("htmx:afterSettle", function (e) { scan(e.target); });
})();
