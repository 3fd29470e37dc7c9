// 驾驶舱 charts (ECharts), drawn from the data-* attributes the page carries (the CSP forbids inline
// script). Labels are drawn on a canvas as text; the tooltips show stage names and numbers only.
(function () {
  "use strict";
  var charts = [];

  function read(el, name) {
    try { return JSON.parse(el.getAttribute(name)); } catch (e) { el.setAttribute("data-error", "bad data"); return null; }
  }

  function funnelOption(data) {
    return {
      tooltip: { trigger: "item", formatter: "{b}: {c}" },
      series: [{
        type: "funnel", sort: "none", left: "5%", width: "90%", top: 10, bottom: 10, minSize: "8%", gap: 2,
        label: { show: true, position: "inside", formatter: "{b} {c}" },
        data: data
      }]
    };
  }

  function trendOption(d) {
    var series = d.series.map(function (s) {
      return { type: "bar", name: s.name, data: s.data, barMaxWidth: 14 };
    });
    series.push({ type: "line", name: d.funds.name, data: d.funds.data, yAxisIndex: 1, smooth: true, symbolSize: 5 });
    return {
      tooltip: { trigger: "axis" },
      legend: { type: "scroll", top: 0 },
      grid: { left: 40, right: 56, top: 36, bottom: 28 },
      xAxis: { type: "category", data: d.months, axisLabel: { hideOverlap: true } },
      yAxis: [{ type: "value", minInterval: 1 }, { type: "value", splitLine: { show: false } }],
      series: series
    };
  }

  function draw(el) {
    if (el._zsChart || typeof echarts === "undefined") { return; }
    var kind = el.getAttribute("data-chart");
    var option = null;
    if (kind === "funnel") {
      var f = read(el, "data-funnel");
      option = f && funnelOption(f);
    } else if (kind === "trend") {
      var t = read(el, "data-trend");
      option = t && trendOption(t);
    }
    if (!option) { return; }
    var chart = echarts.init(el, null, { renderer: "canvas" });
    chart.setOption(option);
    el._zsChart = chart;
    charts.push(chart);
    el.setAttribute("data-rendered", "1");
  }

  function scan(root) {
    (root || document).querySelectorAll("[data-chart]").forEach(draw);
  }

  window.addEventListener("resize", function () { charts.forEach(function (c) { c.resize(); }); });
  document.addEventListener("DOMContentLoaded", function () {
    // On a phone the filters fold away so the figures come first (the summary line says what is shown).
    var box = document.getElementById("dash-filters-box");
    if (box && window.matchMedia("(max-width: 700px)").matches) { box.removeAttribute("open"); }
    scan(document);
  });
  document.addEventListener("htmx:afterSettle", function (e) { scan(e.target); });
})();
