// notifications.js: the Notifications page. Targets (SMTP: host, port,
// TLS, from, to, user, password; webhook: URL, HMAC secret, CA) listed for
// everyone; administrators add, edit, delete and test them — Test shows
// "delivered" or the SMTP/HTTP error the API answers (secrets redacted).
// Below, the outbox: each message's state, attempts and, on demand, its
// delivery log. Secrets are write-only: the API never returns them, and an
// edit with an empty secret keeps the stored one.
"use strict";
(async function () {
  const HF = window.Holdfast;
  const el = HF.el;
  const me = await HF.shell();
  if (!me) {
    return;
  }
  const isAdmin = me.role === "administrator";
  const content = document.getElementById("content");
  const targetsArea = el("div", { id: "targets" });
  const formArea = el("div", { id: "target-form-area" });
  const outboxArea = el("div", { id: "outbox" });
  const logArea = el("div", { id: "outbox-log", "aria-live": "polite" });
  const results = {}; // target name → its last test's text

  function destination(t) {
    if (t.kind === "smtp" && t.smtp) {
      const s = t.smtp;
      return s.host + (s.port ? ":" + s.port : "") + " (" + (s.tls || "starttls") + ") → " + (s.to || []).join(", ");
    }
    return (t.webhook && t.webhook.url) || "–";
  }

  function targetActions(t) {
    const cell = el("div", { class: "actions" });
    const path = "/notifications/" + encodeURIComponent(t.name);
    cell.append(HF.button("Test", { "data-action": "test", "aria-label": "Test " + t.name }, async () => {
      const res = await HF.api("POST", path + "/test");
      results[t.name] = res.delivered ? "delivered" : "failed: " + res.error;
      await loadAll();
    }));
    const edit = el("button", { type: "button", class: "small secondary", "data-action": "edit", "aria-label": "Edit " + t.name }, "Edit");
    edit.addEventListener("click", () => openForm(t));
    cell.append(edit, HF.button("Delete", { class: "small danger", "data-action": "delete", "aria-label": "Delete " + t.name }, async () => {
      await HF.api("DELETE", path);
      delete results[t.name];
      HF.status("Target " + t.name + " deleted.");
      await loadAll();
    }));
    return cell;
  }

  async function loadTargets() {
    const targets = await HF.api("GET", "/notifications");
    const cols = [
      { title: "Name", value: (t) => t.name },
      { title: "Kind", value: (t) => t.kind },
      { title: "Destination", value: destination },
      { title: "Secret", value: (t) => (t.has_secret ? "set" : "none") },
      { title: "Daily summary (UTC)", value: (t) => t.summary_at || "–" },
    ];
    if (isAdmin) {
      cols.push({ title: "Last test", value: (t) => {
        const r = results[t.name];
        return el("span", { class: r === undefined ? "" : r === "delivered" ? "state-success" : "state-failed",
          "data-test-result": t.name, role: "status" }, r === undefined ? "–" : r);
      } });
      cols.push({ title: "Actions", value: targetActions });
    }
    targetsArea.replaceChildren(HF.table("Notification targets", cols, targets, "No notification targets."));
  }

  async function showLog(n) {
    const full = await HF.api("GET", "/notification-outbox/" + n.id);
    logArea.replaceChildren(HF.section("Delivery log of message " + n.id + " (" + n.event + " to " + n.target + ")",
      full.log && full.log.length ? el("ol", { id: "log-lines" }, ...full.log.map((l) => el("li", {}, l)))
        : el("p", { class: "empty" }, "No delivery attempts yet.")));
  }

  async function loadOutbox() {
    const msgs = await HF.api("GET", "/notification-outbox?limit=100");
    const cols = [
      { title: "ID", value: (n) => n.id },
      { title: "Target", value: (n) => n.target },
      { title: "Event", value: (n) => n.event },
      { title: "State", value: (n) => el("span", { class: "state-" + (n.state === "delivered" ? "success" : n.state) }, n.state) },
      { title: "Attempts", value: (n) => n.attempts },
      { title: "Created", value: (n) => HF.fmtTime(n.created) },
      { title: "Delivered", value: (n) => HF.fmtTime(n.delivered) },
      { title: "Last error", value: (n) => n.last_error || "–" },
      { title: "Log", value: (n) => HF.button("Show log", { class: "small secondary", "data-action": "log",
        "aria-label": "Delivery log of message " + n.id }, () => showLog(n)) },
    ];
    outboxArea.replaceChildren(HF.table("Outbox", cols, msgs, "No messages yet."));
  }

  async function loadAll() {
    await Promise.all([loadTargets(), loadOutbox()]);
  }

  // openForm shows the add form, or the edit form of target t (its name
  // and kind fixed; an empty secret keeps the stored one).
  function openForm(t) {
    const editing = !!t;
    const s = (t && t.smtp) || {};
    const w = (t && t.webhook) || {};
    const input = (id, type, value, attrs) => el("input", Object.assign({ id: id, type: type, autocomplete: "off",
      value: value === undefined || value === null ? "" : value }, attrs || {}));
    const name = input("nt-name", "text", t && t.name, { readonly: editing });
    const kind = HF.select("nt-kind", [["webhook", "Webhook"], ["smtp", "E-mail (SMTP)"]]);
    kind.value = (t && t.kind) || "webhook";
    kind.disabled = editing;
    const url = input("nt-url", "url", w.url);
    const host = input("nt-host", "text", s.host);
    const port = input("nt-port", "number", s.port || "", { min: "0", max: "65535" });
    const tls = HF.select("nt-tls", [["starttls", "STARTTLS (587)"], ["implicit", "Implicit TLS (465)"], ["none", "None (insecure)"]]);
    tls.value = s.tls || "starttls";
    const from = input("nt-from", "email", s.from);
    const to = input("nt-to", "text", (s.to || []).join(", "));
    const user = input("nt-user", "text", s.username);
    const secret = input("nt-secret", "password", "", { autocomplete: "new-password" });
    const secretLabel = el("label", { for: "nt-secret" });
    const ca = el("textarea", { id: "nt-ca", rows: "3" });
    ca.value = (t && (t.kind === "smtp" ? s.ca_pem : w.ca_pem)) || "";
    const insecure = input("nt-insecure", "checkbox", "", { checked: !!(s.insecure || w.insecure) });
    const summary = input("nt-summary", "text", t && t.summary_at, { placeholder: "HH:MM" });
    const smtpBox = el("div", { "data-kind": "smtp" }, HF.field("SMTP host", host), HF.field("Port", port, "Empty: by TLS mode."),
      HF.field("TLS", tls), HF.field("From", from), HF.field("To (comma-separated)", to), HF.field("User", user));
    const hookBox = el("div", { "data-kind": "webhook" }, HF.field("URL", url, "https:// (http:// only with insecure)."));
    const show = () => {
      smtpBox.hidden = kind.value !== "smtp";
      hookBox.hidden = kind.value !== "webhook";
      secretLabel.textContent = (kind.value === "smtp" ? "Password" : "HMAC secret") +
        (editing ? " (empty: keep the stored one)" : " (optional)");
    };
    kind.addEventListener("change", show);
    show();
    const f = HF.form("target-form", editing ? "Edit target " + t.name : "Add a notification target", [
      HF.field("Name", name), HF.field("Kind", kind), smtpBox, hookBox,
      el("div", { class: "field" }, secretLabel, secret),
      HF.field("CA certificate (PEM, optional)", ca),
      el("div", { class: "check" }, insecure, el("label", { for: "nt-insecure" }, " Insecure (plain SMTP or http://)")),
      HF.field("Daily summary at (UTC, optional)", summary),
    ], editing ? "Save target" : "Add target", async () => {
      const body = { name: name.value.trim(), kind: kind.value };
      if (kind.value === "smtp") {
        body.smtp = { host: host.value.trim(), tls: tls.value, from: from.value.trim(),
          to: to.value.split(",").map((x) => x.trim()).filter((x) => x) };
        if (port.value) {
          body.smtp.port = Number(port.value);
        }
        if (user.value.trim()) {
          body.smtp.username = user.value.trim();
        }
      } else {
        body.webhook = { url: url.value.trim() };
      }
      const conf = body.smtp || body.webhook;
      if (ca.value.trim()) {
        conf.ca_pem = ca.value;
      }
      if (insecure.checked) {
        conf.insecure = true;
      }
      if (summary.value.trim()) {
        body.summary_at = summary.value.trim();
      }
      if (secret.value) {
        body.secret = secret.value;
      }
      if (editing) {
        await HF.api("PUT", "/notifications/" + encodeURIComponent(t.name), body);
      } else {
        await HF.api("POST", "/notifications", body);
      }
      HF.status("Target " + body.name + (editing ? " saved." : " added."));
      formArea.replaceChildren(addButton());
      await loadAll();
    });
    const cancel = el("button", { type: "button", class: "secondary", id: "target-cancel" }, "Cancel");
    cancel.addEventListener("click", () => formArea.replaceChildren(addButton()));
    f.append(cancel);
    formArea.replaceChildren(f);
    (editing ? url : name).focus();
  }

  function addButton() {
    const b = el("button", { type: "button", id: "target-new" }, "Add target");
    b.addEventListener("click", () => openForm(null));
    return b;
  }

  if (isAdmin) {
    formArea.append(addButton());
  }
  content.append(HF.section("Targets", targetsArea, formArea), HF.section("Outbox", outboxArea, logArea));
  await loadAll();
  document.body.dataset.ready = "1";
})().catch((err) => window.Holdfast.fail(err));
