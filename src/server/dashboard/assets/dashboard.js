// spec-kitty dashboard: local times, the live board, infinite scroll. No dependencies; every
// page works without this script (plain links and forms), it only makes them nicer.
"use strict";

(function () {
  function age(ms) {
    var s = Math.max(0, Math.floor(ms / 1000));
    if (s < 60) return s + " s";
    if (s < 3600) return Math.floor(s / 60) + " min";
    if (s < 86400) return Math.floor(s / 3600) + " h " + Math.floor((s % 3600) / 60) + " min";
    return Math.floor(s / 86400) + " d " + Math.floor((s % 86400) / 3600) + " h";
  }

  // Times in the viewer's own time zone, with a relative age that stays current.
  function localTimes(root) {
    var now = Date.now();
    root.querySelectorAll("time[datetime]").forEach(function (el) {
      var t = new Date(el.getAttribute("datetime"));
      if (isNaN(t)) return;
      el.title = t.toLocaleString();
      if (el.hasAttribute("data-since")) {
        el.textContent = age(now - t.getTime());
      } else {
        el.textContent = t.toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" }) +
          " · " + age(now - t.getTime()) + " ago";
      }
    });
  }

  // The board follows server-sent events: on each change it fetches the board again (same
  // filters) and swaps the columns, so cards move without a page reload. EventSource
  // reconnects by itself; after a server restart the stream is opened anew.
  function liveBoard() {
    var board = document.getElementById("board");
    if (!board || !board.dataset.live) return;
    var status = document.getElementById("live-status");
    var pending = false, source = null;
    function setStatus(state, text) {
      if (!status) return;
      status.dataset.state = state;
      status.textContent = text;
    }
    function refresh() {
      if (pending) return;
      pending = true;
      fetch(board.dataset.fragment, { credentials: "same-origin", headers: { "Accept": "text/html" } })
        .then(function (r) { return r.ok ? r.text() : Promise.reject(r.status); })
        .then(function (html) {
          var focused = document.activeElement && document.activeElement.id;
          board.innerHTML = html;
          localTimes(board);
          if (focused) { var el = document.getElementById(focused); if (el) el.focus(); }
        })
        .catch(function () {})
        .then(function () { pending = false; });
    }
    function connect() {
      source = new EventSource(board.dataset.live);
      source.addEventListener("hello", function () { setStatus("live", "Live"); refresh(); });
      source.addEventListener("change", refresh);
      source.onerror = function () {
        setStatus("reconnecting", "Reconnecting…");
        if (source.readyState === EventSource.CLOSED) {
          source = null;
          setTimeout(connect, 2000);
        }
      };
    }
    connect();
  }

  // Activity: older events load as the "older" link scrolls into view; the link itself
  // still works without the script.
  function infiniteScroll() {
    var feed = document.getElementById("feed");
    if (!feed || !("IntersectionObserver" in window)) return;
    var loading = false;
    var observer = new IntersectionObserver(function (entries) {
      entries.forEach(function (e) { if (e.isIntersecting) load(e.target); });
    });
    function watch() {
      var more = document.getElementById("more");
      if (more) observer.observe(more);
    }
    function load(more) {
      if (loading) return;
      loading = true;
      observer.unobserve(more);
      var url = more.getAttribute("href") + "&fragment=1";
      fetch(url, { credentials: "same-origin", headers: { "Accept": "text/html" } })
        .then(function (r) { return r.ok ? r.text() : Promise.reject(r.status); })
        .then(function (html) {
          var t = document.createElement("template");
          t.innerHTML = html;
          var next = t.content.getElementById("more");
          t.content.querySelectorAll("li").forEach(function (li) { feed.appendChild(li); });
          localTimes(feed);
          if (next) more.replaceWith(next); else more.remove();
          watch();
        })
        .catch(function () { observer.observe(more); })
        .then(function () { loading = false; });
    }
    watch();
  }

  document.addEventListener("DOMContentLoaded", function () {
    localTimes(document);
    setInterval(function () { localTimes(document); }, 30000);
    liveBoard();
    infiniteScroll();
  });
})();
