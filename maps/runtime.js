/* zhaoshang map runtime: draws the compact layer data a page embeds (maps/render.py).
 *
 * Every text that came from data reaches the page only through esc() (for the HTML strings
 * Leaflet's popups and tooltips take) or textContent (search list, legend), never raw.
 * Geometries arrive as integers: a layer origin plus per-ring deltas at 10^precision per degree.
 */
(function () {
  "use strict";
  var ZS = {};

  function esc(v) {
    return String(v == null ? "" : v)
      .replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;")
      .replace(/"/g, "&quot;").replace(/'/g, "&#39;");
  }
  ZS.esc = esc;

  function decodeRing(flat, ox, oy, k) {
    var out = new Array(flat.length / 2);
    var x = ox, y = oy;
    for (var i = 0, j = 0; i < flat.length; i += 2, j++) {
      x += flat[i]; y += flat[i + 1];
      out[j] = [y / k, x / k];
    }
    return out;
  }

  function decodePolys(g, ox, oy, k) {
    // g: [polygon, ...], polygon: [ring, ...]; every ring starts from the layer origin.
    var polys = new Array(g.length);
    for (var p = 0; p < g.length; p++) {
      var rings = g[p], rr = new Array(rings.length);
      for (var r = 0; r < rings.length; r++) rr[r] = decodeRing(rings[r], ox, oy, k);
      polys[p] = rr;
    }
    return polys.length === 1 ? polys[0] : polys;
  }

  function fmtNum(v, d) {
    if (v == null || v === "" || (typeof v === "number" && isNaN(v))) return null;
    if (typeof v !== "number") return String(v);
    return v.toLocaleString("zh-CN", { maximumFractionDigits: d, minimumFractionDigits: 0 });
  }

  function cell(layer, field, i) {
    var col = layer.props[field.col];
    if (!col) return null;
    var v = col[i];
    if (v == null || v === "") return null;
    if (field.codes) return field.codes[v] != null ? field.codes[v] : v;
    if (field.type === "num") return fmtNum(v, field.decimals == null ? 1 : field.decimals);
    if (field.type === "list") return v.length ? v.join(", ") : null;
    if (field.type === "bool") return v ? field.yes : null;
    return v;
  }

  function popupHtml(layer, i) {
    var title = layer.props[layer.titleCol] ? layer.props[layer.titleCol][i] : "";
    var html = '<div class="zs-pop"><div class="zs-pop-kind">' + esc(layer.title) + '</div><h4>' + esc(title) + "</h4><table>";
    for (var f = 0; f < layer.fields.length; f++) {
      var field = layer.fields[f], v = cell(layer, field, i);
      if (v == null) continue;
      html += "<tr><th>" + esc(field.label) + "</th><td>" + esc(v) + (field.unit ? " " + esc(field.unit) : "") + "</td></tr>";
    }
    html += "</table>";
    if (layer.extra && layer.extra[i]) html += layer.extraHtml(layer.extra[i]);
    return html + "</div>";
  }

  function styleFor(layer, i) {
    var s = {}, base = layer.style.base, k;
    for (k in base) s[k] = base[k];
    if (layer.style.by) {
      var v = layer.props[layer.style.by][i], over = layer.style.values[v] || layer.style.fallback || {};
      for (k in over) s[k] = over[k];
    }
    if (layer.style.flag && layer.props[layer.style.flag.col][i]) {
      var fl = layer.style.flag.style;
      for (k in fl) s[k] = fl[k];
    }
    return s;
  }

  function tipFor(layer, i) {
    var t = layer.props[layer.tipCol] ? layer.props[layer.tipCol][i] : "";
    var id = layer.idCol && layer.props[layer.idCol] ? layer.props[layer.idCol][i] : "";
    return esc(t) + (id && id !== t ? ' <span class="zs-id">' + esc(id) + "</span>" : "");
  }

  ZS.searchIndex = [];
  ZS.counts = {};
  ZS.groups = {};

  function addLayer(map, spec, layer) {
    var k = Math.pow(10, spec.precision), ox = layer.origin[0], oy = layer.origin[1];
    var group = L.featureGroup(), n = layer.geoms.length, drawn = 0;
    for (var i = 0; i < n; i++) {
      var g = layer.geoms[i], lyr;
      if (g == null) continue;
      var st = styleFor(layer, i);
      if (layer.type === "polygon" && typeof g[0] !== "number") {
        lyr = L.polygon(decodePolys(g, ox, oy, k), st);
      } else if (layer.type === "polygon") {
        // A site known only by a point (a factory gate): a square-ish dot in the site's colours.
        st.radius = layer.style.pointRadius || 6;
        lyr = L.circleMarker([(oy + g[1]) / k, (ox + g[0]) / k], st);
      } else {
        var ll = [(oy + g[1]) / k, (ox + g[0]) / k];
        if (layer.type === "numbered") {
          var num = layer.props[layer.numberCol][i];
          lyr = L.marker(ll, {
            icon: L.divIcon({ className: "zs-num", html: '<span style="background:' + esc(st.fillColor) + '">' + esc(num) + "</span>",
              iconSize: [28, 28], iconAnchor: [14, 14] }),
            zIndexOffset: 1000 - i,
          });
        } else if (layer.type === "badge") {
          // Few, important points (highway exits, rail yards, ports): a lettered badge, not a dot.
          lyr = L.marker(ll, {
            icon: L.divIcon({ className: "zs-badge", html: '<span style="background:' + esc(st.fillColor) + '">' + esc(layer.props[layer.glyphCol][i]) + "</span>",
              iconSize: [22, 22], iconAnchor: [11, 11] }),
            zIndexOffset: 500,
          });
        } else {
          lyr = L.circleMarker(ll, st);
        }
      }
      lyr._zsIndex = i;
      group.addLayer(lyr);
      drawn++;
      if (layer.search) {
        var id = layer.idCol ? layer.props[layer.idCol][i] : "", name = layer.props[layer.tipCol][i];
        ZS.searchIndex.push({ key: (String(id) + " " + String(name)).toLowerCase(), id: id, name: name, layer: lyr, group: layer });
      }
      if (layer.labelCol) {
        lyr.bindTooltip(esc(layer.props[layer.labelCol][i]), { permanent: true, direction: "center", className: "zs-label" });
      }
    }
    // One handler per group, popups built on demand: 20,000 parcels cost nothing until clicked.
    if (layer.popup) {
      group.on("click", function (e) {
        var i = e.layer._zsIndex;
        L.popup({ maxWidth: 360 }).setLatLng(e.latlng).setContent(popupHtml(layer, i)).openOn(map);
      });
    }
    if (!layer.labelCol) {
      group.on("mouseover", function (e) {
        var l = e.layer;
        if (!l.getTooltip()) l.bindTooltip(tipFor(layer, l._zsIndex), { sticky: layer.type === "polygon", className: "zs-tip" });
        l.openTooltip(e.latlng);
      });
    }
    layer.extraHtml = ZS.extraHtml[layer.extraKind] || function () { return ""; };
    if (!layer.uncounted) ZS.counts[layer.id] = drawn;
    ZS.groups[layer.id] = group;
    if (layer.show !== false) group.addTo(map);
    return group;
  }

  ZS.extraHtml = {
    criteria: function (rows) {
      var h = '<table class="zs-crit"><tr>';
      for (var c = 0; c < rows.head.length; c++) h += "<th>" + esc(rows.head[c]) + "</th>";
      h += "</tr>";
      for (var r = 0; r < rows.rows.length; r++) {
        h += "<tr>";
        for (var j = 0; j < rows.rows[r].length; j++) h += "<td>" + esc(rows.rows[r][j]) + "</td>";
        h += "</tr>";
      }
      return h + "</table>";
    },
  };

  function openFeature(map, entry) {
    var l = entry.layer;
    if (l.getBounds) map.fitBounds(l.getBounds(), { maxZoom: 17 });
    else map.setView(l.getLatLng(), Math.max(map.getZoom(), 16));
    if (!map.hasLayer(l)) ZS.groups[entry.group.id].addTo(map);
    var c = l.getBounds ? l.getBounds().getCenter() : l.getLatLng();
    L.popup({ maxWidth: 360 }).setLatLng(c).setContent(popupHtml(entry.group, l._zsIndex)).openOn(map);
  }

  // Open a feature by id or name, as the search does (for links and for tests).
  ZS.open = function (map, key) {
    for (var i = 0; i < ZS.searchIndex.length; i++) {
      var e = ZS.searchIndex[i];
      if (e.id === key || e.name === key) { openFeature(map, e); return true; }
    }
    return false;
  };

  function addSearch(map, spec) {
    var Search = L.Control.extend({
      options: { position: "topleft" },
      onAdd: function () {
        var box = L.DomUtil.create("div", "zs-search leaflet-bar");
        var input = L.DomUtil.create("input", "", box);
        input.type = "search";
        input.placeholder = spec.text.search;
        input.setAttribute("aria-label", spec.text.search);
        var list = L.DomUtil.create("ul", "", box);
        L.DomEvent.disableClickPropagation(box);
        L.DomEvent.disableScrollPropagation(box);
        input.addEventListener("input", function () {
          var q = input.value.trim().toLowerCase();
          list.textContent = "";
          if (!q) return;
          var hits = 0;
          for (var i = 0; i < ZS.searchIndex.length && hits < 12; i++) {
            var e = ZS.searchIndex[i];
            if (e.key.indexOf(q) < 0) continue;
            var li = document.createElement("li");
            li.textContent = e.name + (e.id && e.id !== e.name ? "  " + e.id : "");
            li.addEventListener("click", openFeature.bind(null, map, e));
            list.appendChild(li);
            hits++;
          }
          if (!hits) {
            var none = document.createElement("li");
            none.className = "zs-none";
            none.textContent = spec.text.no_match;
            list.appendChild(none);
          }
        });
        return box;
      },
    });
    new Search().addTo(map);
  }

  function swatch(item) {
    var s = document.createElement("i");
    s.className = "zs-sw zs-sw-" + item.shape;
    if (item.shape === "badge") { s.textContent = item.glyph || ""; s.style.background = item.fill; return s; }
    if (item.shape === "line") s.style.borderColor = item.color;
    else if (item.shape === "ring") { s.style.borderColor = item.color; s.style.background = item.fill || "transparent"; }
    else { s.style.background = item.fill || item.color; s.style.borderColor = item.color; }
    if (item.dash) s.style.borderStyle = "dashed";
    return s;
  }

  function addLegend(map, spec) {
    var Legend = L.Control.extend({
      options: { position: "bottomright" },
      onAdd: function () {
        var box = L.DomUtil.create("div", "zs-legend");
        var h = document.createElement("div");
        h.className = "zs-legend-title";
        h.textContent = spec.text.legend;
        box.appendChild(h);
        for (var s = 0; s < spec.legend.length; s++) {
          var sec = spec.legend[s], t = document.createElement("div");
          t.className = "zs-legend-sec";
          t.textContent = sec.title;
          box.appendChild(t);
          for (var i = 0; i < sec.items.length; i++) {
            var row = document.createElement("div");
            row.className = "zs-legend-row";
            row.appendChild(swatch(sec.items[i]));
            var lab = document.createElement("span");
            lab.textContent = sec.items[i].label;
            row.appendChild(lab);
            box.appendChild(row);
          }
        }
        L.DomEvent.disableScrollPropagation(box);
        return box;
      },
    });
    new Legend().addTo(map);
  }

  function addTitle(map, spec) {
    var Title = L.Control.extend({
      options: { position: "topright" },
      onAdd: function () {
        var box = L.DomUtil.create("div", "zs-title");
        var h = document.createElement("h1");
        h.textContent = spec.title;
        box.appendChild(h);
        if (spec.subtitle) {
          var p = document.createElement("p");
          p.textContent = spec.subtitle;
          box.appendChild(p);
        }
        return box;
      },
    });
    new Title().addTo(map);
  }

  function addPanel(map, spec) {
    var Panel = L.Control.extend({
      options: { position: "topleft" },
      onAdd: function () {
        var box = L.DomUtil.create("div", "zs-panel");
        var h = document.createElement("div");
        h.className = "zs-legend-title";
        h.textContent = spec.panel.title;
        box.appendChild(h);
        var ol = document.createElement("ol");
        for (var i = 0; i < spec.panel.rows.length; i++) {
          var li = document.createElement("li");
          li.textContent = spec.panel.rows[i];
          ol.appendChild(li);
        }
        box.appendChild(ol);
        L.DomEvent.disableClickPropagation(box);
        L.DomEvent.disableScrollPropagation(box);
        return box;
      },
    });
    new Panel().addTo(map);
  }

  // Pipeline replay: frames[m] holds one stage code per project (. absent, upper case stalled).
  function addTimeline(map, spec) {
    var tl = spec.timeline, layer = null;
    for (var i = 0; i < spec.layers.length; i++) if (spec.layers[i].id === tl.layer) layer = spec.layers[i];
    var group = ZS.groups[tl.layer], members = [];
    group.eachLayer(function (l) { members[l._zsIndex] = l; });
    function show(m) {
      var codes = tl.frames[m], shown = 0, props = layer.props, tally = {}, stalledN = 0;
      for (var j = 0; j < members.length; j++) {
        var l = members[j];
        if (!l) continue;
        var c = codes.charAt(j);
        if (c === ".") { if (group.hasLayer(l)) group.removeLayer(l); continue; }
        var lower = c.toLowerCase(), stalled = c !== lower;
        props.stage[j] = tl.codes[lower];
        props.stalled[j] = stalled;
        tally[lower] = (tally[lower] || 0) + 1;
        if (stalled) stalledN++;
        l.setStyle(styleFor(layer, j));
        if (!group.hasLayer(l)) group.addLayer(l);
        shown++;
      }
      var parts = [tl.months[m], shown + " " + spec.text.projects];
      for (var q = 0; q < tl.order.length; q++) {
        var code = tl.order[q];
        if (tally[code]) parts.push(tl.labels[code] + " " + tally[code]);
      }
      if (stalledN) parts.push(spec.text.stalled + " " + stalledN);
      label.textContent = parts.join(" · ");
      document.body.dataset.month = tl.months[m];
      document.body.dataset.features = String(shown + (spec.staticFeatures || 0));
      ZS.counts[tl.layer] = shown;
      document.body.dataset.layers = JSON.stringify(ZS.counts);
    }
    var Slider = L.Control.extend({
      options: { position: "bottomleft" },
      onAdd: function () {
        var box = L.DomUtil.create("div", "zs-timeline");
        var play = L.DomUtil.create("button", "", box);
        play.type = "button";
        play.textContent = "▶";
        play.title = spec.text.play;
        var range = L.DomUtil.create("input", "", box);
        range.type = "range";
        range.min = "0";
        range.max = String(tl.months.length - 1);
        range.value = String(tl.months.length - 1);
        label = L.DomUtil.create("span", "zs-month", box);
        L.DomEvent.disableClickPropagation(box);
        range.addEventListener("input", function () { show(+range.value); });
        var timer = null;
        play.addEventListener("click", function () {
          if (timer) { clearInterval(timer); timer = null; play.textContent = "▶"; return; }
          if (+range.value >= tl.months.length - 1) range.value = "0";
          play.textContent = "❚❚";
          timer = setInterval(function () {
            var v = +range.value + 1;
            if (v > tl.months.length - 1) { clearInterval(timer); timer = null; play.textContent = "▶"; return; }
            range.value = String(v);
            show(v);
          }, 600);
        });
        return box;
      },
    });
    var label = null;
    new Slider().addTo(map);
    show(tl.months.length - 1);
  }

  ZS.draw = function (map, spec) {
    var overlays = {};
    ZS.map = map;
    for (var i = 0; i < spec.layers.length; i++) {
      var layer = spec.layers[i];
      overlays[esc(layer.title)] = addLayer(map, spec, layer);
    }
    if (spec.title) addTitle(map, spec);
    L.control.layers(spec.baseLayers ? spec.baseLayers(map) : {}, overlays, { collapsed: false, position: "topright" }).addTo(map);
    if (ZS.searchIndex.length) addSearch(map, spec);
    if (spec.panel) addPanel(map, spec);
    addLegend(map, spec);
    if (spec.bounds) map.fitBounds(spec.bounds, { padding: [20, 20] });
    // #zoom/lat/lon opens the page on a view (for links and for print shots of one park).
    var view = /^#(\d{1,2})\/(-?[\d.]+)\/(-?[\d.]+)/.exec(location.hash);
    if (view) map.setView([+view[2], +view[3]], +view[1]);
    // #print (alone or after a view) hides the interactive controls for print pictures.
    if (/(^#|\/)print$/.test(location.hash)) document.body.classList.add("zs-print");
    var total = 0;
    for (var id in ZS.counts) total += ZS.counts[id];
    document.body.dataset.features = String(total);
    document.body.dataset.layers = JSON.stringify(ZS.counts);
    if (spec.timeline) {
      spec.staticFeatures = total - ZS.counts[spec.timeline.layer];
      addTimeline(map, spec);
    }
    document.body.dataset.readyMs = String(Math.round(performance.now()));
    document.body.dataset.ready = "1";
  };

  window.ZS = ZS;
})();
