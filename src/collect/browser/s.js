/* sessionizer first-party script: page views (including single-page-app route changes) and
 * custom events, sent with navigator.sendBeacon (or fetch keepalive) to the collector's Segment
 * API. No dependencies. Stores nothing on the device: no cookie, no localStorage, no
 * sessionStorage; the collector recognises the visitor server-side, without an id here.
 *
 *   <script defer src="https://collect.example.com/s.js" data-key="WRITE_KEY"></script>
 *   sessionizer.track('signup', { plan: 'pro' })
 *
 * data-key: the site's write key (required). data-api: the collector's origin (default: where
 * this script was loaded from, so a self-hosted copy needs it).
 */
/* global window, document, navigator, location, history, fetch, crypto, URL */
(function () {
  'use strict';
  var script = document.currentScript;
  if (!script || window.sessionizer) return;
  var key = script.getAttribute('data-key');
  var api = (script.getAttribute('data-api') || new URL(script.src).origin).replace(/\/$/, '');
  var lastUrl = null;
  var lastPath = null;

  function id() {
    if (crypto && crypto.randomUUID) return crypto.randomUUID();
    var s = '';
    for (var i = 0; i < 32; i++) s += Math.floor(Math.random() * 16).toString(16);
    return s;
  }

  function send(type, body) {
    var now = new Date().toISOString();
    // channel: everything this script sends comes from a browser (a track call would be
    // `server` by the Segment mapping's default otherwise).
    var ctx = { channel: 'web', page: { url: location.href, path: location.pathname, title: document.title, referrer: lastUrl || document.referrer }, library: { name: 'sessionizer-s.js', version: '1' } };
    var uad = navigator.userAgentData;
    if (uad) ctx.userAgentData = { brands: uad.brands, mobile: uad.mobile, platform: uad.platform };
    body.writeKey = key;
    body.messageId = id();
    body.originalTimestamp = now;
    body.sentAt = now;
    body.context = ctx;
    var url = api + '/v1/' + type;
    var text = JSON.stringify(body);
    // A string body is sent as text/plain: no CORS preflight, no credentials needed.
    if (!(navigator.sendBeacon && navigator.sendBeacon(url, text))) {
      fetch(url, { method: 'POST', body: text, keepalive: true, mode: 'no-cors', credentials: 'omit' });
    }
  }

  function page() {
    var path = location.pathname + location.search;
    if (path === lastPath) return;
    send('page', { name: document.title, properties: {} });
    lastPath = path;
    lastUrl = location.href;
  }

  function wrap(name) {
    var original = history[name];
    history[name] = function () {
      var result = original.apply(this, arguments);
      page();
      return result;
    };
  }

  wrap('pushState');
  wrap('replaceState');
  window.addEventListener('popstate', page);

  window.sessionizer = {
    page: function () {
      lastPath = null;
      page();
    },
    track: function (event, properties) {
      send('track', { event: String(event), properties: properties || {} });
    },
  };
  page();
})();
