/* global window, document, fetch, setInterval, uPlot */
/* The only script of the pages: draws the chart (uPlot, served by us) from the JSON the server
   put in the page, and refreshes the current-visitors count every 30 seconds. Everything else
   is links and forms. Plain ES2017, no build step. */
(function () {
  'use strict';

  function formatValue(value, format) {
    if (value === null || value === undefined) return '–';
    if (format === 'percent') return Math.round(value) + '%';
    if (format === 'decimal') return value.toFixed(2);
    if (format === 'duration') {
      var s = Math.round(value), m = Math.floor(s / 60);
      return m > 0 ? m + 'm ' + (s % 60) + 's' : s + 's';
    }
    return Math.round(value).toLocaleString('en-US');
  }

  function drawChart() {
    var target = document.getElementById('chart');
    var source = document.getElementById('chart-data');
    if (!target || !source || typeof uPlot === 'undefined') return;
    var data = JSON.parse(source.textContent);
    var n = data.labels.length;
    var xs = data.labels.map(function (_, i) { return i; });
    var idx = data.incompleteIndex;
    // Complete buckets solid; the running one dashed from the last complete one (as Plausible
    // draws it); buckets still to come, none.
    var done = data.values.map(function (v, i) { return idx < 0 || i < idx ? v : null; });
    var running = data.values.map(function (v, i) { return idx >= 0 && (i === idx || i === idx - 1) ? v : null; });
    var series = [{ label: data.interval, value: function (_, i) { return i === null ? '' : data.labels[i] || ''; } },
      { label: data.label, stroke: '#4f46e5', width: 2, fill: 'rgba(99,102,241,0.12)', points: { show: n <= 40 }, value: function (_, v) { return formatValue(v, data.format); } },
      { label: data.label + ' (so far)', stroke: '#4f46e5', width: 2, dash: [6, 5], points: { show: true }, value: function (_, v) { return formatValue(v, data.format); } }];
    var columns = [xs, done, running];
    if (data.previous) {
      series.push({ label: 'Previous period', stroke: '#9ca3af', width: 1.5, dash: [2, 3], points: { show: false }, value: function (_, v) { return formatValue(v, data.format); } });
      columns.push(data.previous.slice(0, n));
    }
    function tick(label) {
      if (!label) return '';
      if (data.interval === 'hour') return label.slice(11, 16);
      if (data.interval === 'month') return label.slice(0, 7);
      return label.slice(5, 10);
    }
    var width = function () { return Math.max(260, target.clientWidth); };
    var plot = new uPlot({
      width: width(),
      height: window.innerWidth < 720 ? 200 : 260,
      series: series,
      scales: { x: { time: false } },
      cursor: { drag: { x: false, y: false } },
      axes: [
        { values: function (_, splits) { return splits.map(function (i) { return tick(data.labels[i]); }); }, grid: { show: false } },
        { values: function (_, splits) { return splits.map(function (v) { return formatValue(v, data.format); }); }, size: 60, grid: { stroke: '#f3f4f6' } },
      ],
    }, columns, target);
    window.addEventListener('resize', function () { plot.setSize({ width: width(), height: plot.height }); });
  }

  function currentVisitors() {
    var link = document.getElementById('current-visitors');
    if (!link || !window.fetch) return;
    var count = link.querySelector('.n');
    function refresh() {
      fetch(link.getAttribute('data-src'), { headers: { accept: 'application/json' }, credentials: 'same-origin' })
        .then(function (r) { return r.ok ? r.json() : null; })
        .then(function (body) { if (body && typeof body.visitors === 'number') count.textContent = body.visitors.toLocaleString('en-US'); })
        .catch(function () { /* the next refresh tries again */ });
    }
    refresh();
    setInterval(refresh, 30000);
  }

  drawChart();
  currentVisitors();
})();
