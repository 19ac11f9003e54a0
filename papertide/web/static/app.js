/* papertide's progressive enhancement, plain JS, loaded with `defer` (no inline scripts:
 * the Content-Security-Policy forbids them). Pages work without it.
 *  - math: KaTeX renders $…$, \(…\), $$…$$ and \[…\] in titles and abstracts (elements
 *    with class "tex"); a formula KaTeX cannot read stays as the raw text.
 *  - autocomplete: search boxes with data-complete ask /api/complete as you type. */
(function () {
  "use strict";

  function renderMath() {
    if (typeof window.renderMathInElement !== "function") return;
    var delimiters = [
      { left: "$$", right: "$$", display: true },
      { left: "\\[", right: "\\]", display: true },
      { left: "$", right: "$", display: false },
      { left: "\\(", right: "\\)", display: false }
    ];
    document.querySelectorAll(".tex").forEach(function (el) {
      try {
        // throwOnError: a formula that does not parse is left as its raw text
        window.renderMathInElement(el, { delimiters: delimiters, throwOnError: true });
      } catch (e) { /* keep the raw text */ }
    });
  }

  function autocomplete(input) {
    var list = input.parentNode.querySelector(".completions");
    if (!list) return;
    var url = input.getAttribute("data-complete");
    var timer = null, seq = 0, selected = -1;

    function close() { list.hidden = true; list.textContent = ""; selected = -1; }

    function choose(text) {
      input.value = text;
      close();
      input.focus();
    }

    function show(items) {
      list.textContent = "";
      selected = -1;
      items.forEach(function (item) {
        var li = document.createElement("li");
        li.setAttribute("role", "option");
        var phrase = document.createElement("span");
        phrase.textContent = item.phrase;  // text, never HTML
        var count = document.createElement("small");
        count.textContent = String(item.count);
        li.appendChild(phrase);
        li.appendChild(count);
        li.addEventListener("mousedown", function (ev) { ev.preventDefault(); choose(item.phrase); });
        list.appendChild(li);
      });
      list.hidden = items.length === 0;
    }

    function ask() {
      var typed = input.value;
      if (!typed.trim() || typed.length > 200) { close(); return; }
      var mine = ++seq;
      fetch(url + "?q=" + encodeURIComponent(typed), { headers: { "Accept": "application/json" } })
        .then(function (r) { return r.ok ? r.json() : { completions: [] }; })
        .then(function (data) { if (mine === seq) show(data.completions || []); })
        .catch(close);
    }

    function move(step) {
      var items = list.querySelectorAll("li");
      if (!items.length) return;
      if (selected >= 0) items[selected].setAttribute("aria-selected", "false");
      selected = (selected + step + items.length) % items.length;
      items[selected].setAttribute("aria-selected", "true");
    }

    input.addEventListener("input", function () {
      clearTimeout(timer);
      timer = setTimeout(ask, 120);
    });
    input.addEventListener("keydown", function (ev) {
      if (list.hidden) return;
      if (ev.key === "ArrowDown") { ev.preventDefault(); move(1); }
      else if (ev.key === "ArrowUp") { ev.preventDefault(); move(-1); }
      else if (ev.key === "Escape") { close(); }
      else if (ev.key === "Enter" && selected >= 0) {
        ev.preventDefault();
        choose(list.querySelectorAll("li")[selected].firstChild.textContent);
      }
    });
    input.addEventListener("blur", function () { setTimeout(close, 150); });
  }

  function start() {
    renderMath();
    document.querySelectorAll("input[data-complete]").forEach(autocomplete);
  }

  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", start);
  else start();
})();

/* Upvotes without reloading: every vote form (class "vote", data-vote and data-unvote
 * URLs) — the paper page's and those of list entries — posts with fetch, asking for
 * JSON ({votes, voted}), and sends the form's CSRF token in the X-CSRF-Token header. The
 * count shown is the one of the form's own entry (or of the paper page). Any failure
 * falls back to posting the form normally, so the server's page (log in, error) is what
 * the user sees; without script the form posts and the server sends the browser back.
 * "Not relevant" marks (every form.mark, data-mark and data-unmark URLs) work the same way
 * with JSON {paper_id, not_relevant}: the button says which state the paper is in, and a
 * marked list entry is dimmed. */
(function () {
  "use strict";

  function showVote(form, button, data) {
    var box = form.closest(".entry, .paper-meta");
    var count = box && box.querySelector(".votes .n");
    var label = box && box.querySelector(".votes .l");
    var votes = box && box.querySelector(".votes");
    if (count) count.textContent = String(data.votes);
    if (label) label.textContent = data.votes === 1 ? "upvote" : "upvotes";
    if (votes) votes.title = data.votes + (data.votes === 1 ? " upvote" : " upvotes") + " on papertide";
    var text = button.getAttribute(data.voted ? "data-on" : "data-off");
    if (text !== null) button.textContent = text;
    button.setAttribute("aria-pressed", data.voted ? "true" : "false");
    form.action = form.getAttribute(data.voted ? "data-unvote" : "data-vote");
  }

  function showMark(form, button, marked) {
    var text = button.getAttribute(marked ? "data-on" : "data-off");
    if (text !== null) button.textContent = text;
    button.setAttribute("aria-pressed", marked ? "true" : "false");
    form.action = form.getAttribute(marked ? "data-unmark" : "data-mark");
    var entry = form.closest(".entry");
    if (entry) entry.classList.toggle("dismissed", marked);
  }

  // Post the form with fetch asking for JSON and hand the answer to onData; any failure
  // falls back to the plain form post (the server's page then says what went wrong).
  function enhance(form, onData) {
    var button = form.querySelector("button");
    form.addEventListener("submit", function (ev) {
      if (!window.fetch || !window.URLSearchParams) return;
      ev.preventDefault();
      if (button.disabled) return;
      var token = form.querySelector("input[name=csrf]");
      button.disabled = true;
      fetch(form.action, {
        method: "POST",
        credentials: "same-origin",
        headers: { "Accept": "application/json", "X-CSRF-Token": token ? token.value : "" },
        body: new URLSearchParams(new FormData(form))
      }).then(function (r) {
        if (!r.ok) throw new Error("HTTP " + r.status);
        return r.json();
      }).then(function (data) {
        onData(form, button, data);
        button.disabled = false;
      }).catch(function () {
        button.disabled = false;
        form.submit();
      });
    });
  }

  function start() {
    document.querySelectorAll("form.vote[data-vote]").forEach(function (form) { enhance(form, showVote); });
    document.querySelectorAll("form.mark[data-mark]").forEach(function (form) {
      enhance(form, function (f, button, data) { showMark(f, button, data.not_relevant === true); });
    });
  }

  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", start);
  else start();
})();
