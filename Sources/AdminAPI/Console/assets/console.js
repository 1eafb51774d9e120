// Progressive enhancement only: every reading page works without JavaScript, and every form posts
// to /console/act without it. With it: forms keep what was typed when the API refuses them, audience
// counts follow the typing, and live panels refresh.
"use strict";
(function () {
  const csrf = () => (document.querySelector('meta[name="csrf"]') || {}).content || "";

  // Where a form should come back to: this page.
  document.querySelectorAll("input[data-here]").forEach((i) => { i.value = location.pathname + location.search; });
  // The operator's time zone, from the browser, unless they chose one.
  const zone = Intl.DateTimeFormat().resolvedOptions().timeZone;
  if (zone && !document.cookie.split("; ").some((c) => c.startsWith("tz="))) {
    document.cookie = "tz=" + encodeURIComponent(zone) + "; Path=/; Max-Age=31536000; SameSite=Strict";
    document.querySelectorAll("input[data-browser-zone]").forEach((i) => { i.value = zone; });
  }
  document.querySelectorAll("select[data-autosubmit]").forEach((s) => s.addEventListener("change", () => s.form.submit()));
  document.querySelectorAll(".js-hide").forEach((e) => { e.hidden = true; });

  // Forms to /console/act: sent with fetch; an error is shown next to the form, the input stays.
  document.querySelectorAll("form[data-act]").forEach((form) => {
    form.addEventListener("submit", async (event) => {
      // A button with its own formaction (the campaign preview) is an ordinary page submission.
      if (event.submitter && event.submitter.hasAttribute("formaction")) return;
      event.preventDefault();
      if (form.dataset.confirm && !window.confirm(form.dataset.confirm)) return;
      const button = form.querySelector('button[type="submit"], button:not([type])');
      if (button) button.disabled = true;
      let alert = form.querySelector(".form-error");
      if (!alert) {
        alert = document.createElement("p");
        alert.className = "form-error error";
        alert.setAttribute("role", "alert");
        form.appendChild(alert);
      }
      alert.textContent = "";
      try {
        const response = await fetch(form.action, {
          method: "POST", credentials: "same-origin",
          headers: { "Accept": "application/json", "Content-Type": "application/x-www-form-urlencoded" },
          body: new URLSearchParams(new FormData(form)).toString(),
        });
        const answer = await response.json();
        if (answer.ok) { location.assign(answer.location); return; }
        alert.textContent = (answer.error && answer.error.message) || response.statusText;
        if (answer.error && answer.error.code === "session_expired") location.assign("/console/login");
      } catch (e) {
        alert.textContent = String(e);
      }
      if (button) button.disabled = false;
    });
  });

  // The audience editor: count and sample as the marketer types (debounced), the error at its position.
  document.querySelectorAll("textarea[data-live-count]").forEach((area) => {
    const root = area.closest("main");
    const count = root.querySelector("[data-count]");
    const errorBox = root.querySelector("[data-expr-error]");
    const sample = root.querySelector("[data-sample]");
    const warnings = root.querySelector("[data-warnings]");
    const elapsed = root.querySelector("[data-elapsed]");
    const exportLink = root.querySelector("[data-export]");
    const saved = root.querySelector("form[data-save-segment] input[name=expression]");
    let timer = null;
    let sequence = 0;
    const approx = root.querySelector("[data-approx]");
    const margin = root.querySelector("[data-margin]");
    const note = root.querySelector("[data-estimate-note]");
    // First an estimate (milliseconds on a million customers), then, when it was one, the exact count.
    const ask = async (expression, estimate) => {
      const response = await fetch("/api/v1/audiences/preview", {
        method: "POST", credentials: "same-origin",
        headers: { "Content-Type": "application/json", "X-CSRF-Token": csrf() },
        body: JSON.stringify({ expression: expression, sample: 10, estimate: estimate }),
      });
      return { response: response, answer: await response.json() };
    };
    const show = (answer) => {
      count.textContent = Number(answer.count).toLocaleString();
      if (approx) approx.textContent = answer.estimated ? "≈ " : "";
      if (margin) margin.textContent = answer.estimated ? "± " + Number(answer.margin).toLocaleString() : "";
      if (note) note.hidden = !answer.estimated;
      if (elapsed) elapsed.textContent = answer.elapsedMs + " ms";
    };
    const run = async () => {
      const expression = area.value.trim();
      const mine = ++sequence;
      if (!expression) { count.textContent = "–"; errorBox.textContent = ""; return; }
      let { response, answer } = await ask(expression, true);
      if (mine !== sequence) return;
      if (!response.ok) {
        const message = (answer.error && answer.error.message) || response.statusText;
        const at = /at position (\d+)/.exec(message);
        errorBox.textContent = message;
        area.setAttribute("aria-invalid", "true");
        if (at) { const p = Math.min(Number(at[1]), area.value.length); area.setSelectionRange(p, p); }
        return;
      }
      area.removeAttribute("aria-invalid");
      errorBox.textContent = "";
      show(answer);
      sample.replaceChildren(...answer.sample.map((id) => {
        const li = document.createElement("li");
        const a = document.createElement("a");
        a.href = "/console/customers/" + encodeURIComponent(id);
        a.textContent = id;
        li.appendChild(a);
        return li;
      }));
      warnings.replaceChildren(...answer.warnings.map((w) => { const li = document.createElement("li"); li.textContent = w; return li; }));
      if (exportLink) exportLink.href = "/api/v1/audiences/export?expr=" + encodeURIComponent(expression);
      // The segment form saves what was counted last.
      if (saved) saved.value = expression;
      if (answer.estimated) {
        ({ response, answer } = await ask(expression, false));
        if (mine === sequence && response.ok) show(answer);
      }
    };
    // A page rendered with an estimate fetches the exact count at once.
    if (root.querySelector("[data-exact-pending]") && area.value.trim()) run();
    area.addEventListener("input", () => { clearTimeout(timer); timer = setTimeout(run, 250); });
  });
  // Imports: the chosen file goes to the API as it is (streamed, with the session's token); a dry
  // run shows what would be rejected, an import goes to its job's page.
  document.querySelectorAll("form[data-import]").forEach((form) => {
    const result = form.parentElement.querySelector("[data-import-result]");
    form.addEventListener("submit", async (event) => {
      event.preventDefault();
      const file = form.querySelector('input[type="file"]').files[0];
      if (!file) return;
      const dry = event.submitter && event.submitter.hasAttribute("data-dry-run");
      const source = encodeURIComponent(form.querySelector("#source").value || "console");
      result.textContent = "…";
      const response = await fetch("/api/v1/customers/import?source=" + source + (dry ? "&dryRun=true" : ""), {
        method: "POST", credentials: "same-origin", headers: { "Content-Type": "text/csv", "X-CSRF-Token": csrf() }, body: file,
      });
      const answer = await response.json();
      if (!response.ok) { result.replaceChildren(Object.assign(document.createElement("p"), { className: "error", textContent: (answer.error && answer.error.message) || response.statusText })); return; }
      if (!dry) { location.assign("/console/imports/" + encodeURIComponent(answer.id)); return; }
      const summary = Object.assign(document.createElement("p"), { textContent: `rows ${answer.rowsRead} · valid ${answer.valid} · rejected ${answer.rejected}` });
      summary.dataset.dryRun = "";
      const list = document.createElement("ul");
      (answer.rejections || []).slice(0, 100).forEach((r) => list.appendChild(Object.assign(document.createElement("li"), { textContent: "line " + r.line + ": " + r.reason })));
      result.replaceChildren(summary, list);
    });
  });

  // WeChat media: the chosen picture goes to the API as it is; the media id it answers is shown,
  // ready to paste into a reply or a message.
  document.querySelectorAll("form[data-media]").forEach((form) => {
    const result = form.querySelector("[data-media-result]");
    form.addEventListener("submit", async (event) => {
      event.preventDefault();
      const file = form.querySelector('input[type="file"]').files[0];
      if (!file) return;
      result.textContent = "…";
      const response = await fetch(form.dataset.media + "?type=" + encodeURIComponent(form.querySelector("select").value), {
        method: "POST", credentials: "same-origin", headers: { "Content-Type": file.type || "application/octet-stream", "X-CSRF-Token": csrf() }, body: file,
      });
      const answer = await response.json();
      if (!response.ok) { result.replaceChildren(Object.assign(document.createElement("span"), { className: "error", textContent: (answer.error && answer.error.message) || response.statusText })); return; }
      const code = Object.assign(document.createElement("code"), { textContent: answer.mediaId });
      code.dataset.mediaId = answer.mediaId;
      result.replaceChildren(code);
    });
  });

  // The dashboard: its panels redrawn from the server every 5 seconds (the server draws the charts).
  document.querySelectorAll("[data-panels]").forEach((box) => {
    const refresh = async () => {
      try {
        const response = await fetch(box.dataset.panels, { credentials: "same-origin" });
        if (response.ok && response.headers.get("content-type").startsWith("text/html")) {
          const doc = new DOMParser().parseFromString(await response.text(), "text/html");
          box.replaceChildren(...doc.body.childNodes);
        }
      } catch (e) { /* the next round tries again */ }
    };
    setInterval(refresh, 5000);
  });

  // A live panel that is simplest redrawn whole (a journey's per-step counts): the page again,
  // every N seconds, unless the operator is typing in a form.
  document.querySelectorAll("[data-refresh]").forEach((panel) => {
    const seconds = Math.max(5, Number(panel.dataset.refresh) || 10);
    setInterval(() => {
      const active = document.activeElement;
      if (active && (active.tagName === "TEXTAREA" || active.tagName === "INPUT")) return;
      location.reload();
    }, seconds * 1000);
  });

  // A running campaign: its progress, rate, ETA and counters every second; the page reloads when
  // its state changes (other buttons, the report).
  document.querySelectorAll("[data-campaign-live]").forEach((panel) => {
    const id = panel.dataset.campaignLive;
    const state = document.querySelector("[data-state]");
    const initial = state ? state.dataset.state : "";
    const tick = async () => {
      try {
        const response = await fetch("/api/v1/campaigns/" + encodeURIComponent(id), { credentials: "same-origin" });
        if (!response.ok) return;
        const c = await response.json();
        const p = c.progress || {};
        panel.querySelector("[data-progress]").value = Number(p.percent || 0);
        panel.querySelector("[data-percent]").textContent = Number(p.percent || 0).toFixed(1) + "%";
        panel.querySelector("[data-rate]").textContent = Number(p.ratePerSecond || 0).toFixed(1);
        const eta = panel.querySelector("[data-eta]");
        if (eta && p.etaSeconds != null) eta.textContent = p.etaSeconds >= 60 ? Math.floor(p.etaSeconds / 60) + "m " + (p.etaSeconds % 60) + "s" : p.etaSeconds + "s";
        panel.querySelectorAll("[data-metric]").forEach((dd) => {
          const v = p[dd.dataset.metric];
          if (v != null) dd.textContent = Number(v).toLocaleString("en-US");
        });
        if (c.state !== initial) { location.reload(); return; }
      } catch (e) { /* the next tick tries again */ }
      setTimeout(tick, 1000);
    };
    setTimeout(tick, 1000);
  });
})();
