// common.js: what every console page shares. window.Holdfast holds the
// API client (fetch with the CSRF header), DOM helpers that set text only,
// and the page shell (signed-in user, navigation by role, logout).
"use strict";
(function () {
  const HF = { csrf: "" };

  const roleNames = {
    administrator: "Administrator",
    backup_operator: "Backup operator",
    restore_operator: "Restore operator",
    viewer: "Viewer",
  };
  HF.roleName = (role) => roleNames[role] || role;

  // api calls /api/v1 + path; unsafe methods carry X-CSRF-Token. An error
  // answer throws an Error with status and code.
  HF.api = async function (method, path, body) {
    const headers = { Accept: "application/json" };
    const opts = { method: method, headers: headers, credentials: "same-origin", cache: "no-store" };
    if (method !== "GET" && method !== "HEAD") {
      headers["X-CSRF-Token"] = HF.csrf;
    }
    if (body !== undefined) {
      headers["Content-Type"] = "application/json";
      opts.body = JSON.stringify(body);
    }
    const resp = await fetch("/api/v1" + path, opts);
    let data = null;
    if (resp.status !== 204) {
      try {
        data = await resp.json();
      } catch (e) {
        data = null;
      }
    }
    if (!resp.ok) {
      const err = new Error((data && data.error) || "HTTP " + resp.status);
      err.status = resp.status;
      err.code = data && data.code;
      throw err;
    }
    return data;
  };

  // el makes an element; children are nodes or strings (always text).
  HF.el = function (tag, attrs, ...children) {
    const e = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (v !== undefined && v !== null && v !== false) {
        e.setAttribute(k, v === true ? "" : String(v));
      }
    }
    for (const c of children) {
      if (c !== undefined && c !== null) {
        e.append(c instanceof Node ? c : document.createTextNode(String(c)));
      }
    }
    return e;
  };

  HF.fmtTime = function (s) {
    if (!s) {
      return "–";
    }
    const d = new Date(s);
    return isNaN(d) ? String(s) : d.toLocaleString();
  };

  // fmtBytes is a byte count in binary units (1.5 GiB).
  HF.fmtBytes = function (n) {
    if (n === undefined || n === null) {
      return "–";
    }
    const units = ["B", "KiB", "MiB", "GiB", "TiB", "PiB"];
    let i = 0;
    let v = Number(n);
    while (v >= 1024 && i < units.length - 1) {
      v /= 1024;
      i++;
    }
    return (i === 0 ? String(v) : v.toFixed(1)) + " " + units[i];
  };

  // may reports whether the signed-in role holds an API permission
  // (internal/server/api routes.go: backup, restore, admin).
  HF.may = function (perm) {
    const role = HF.me ? HF.me.role : "";
    switch (perm) {
      case "backup":
        return role === "administrator" || role === "backup_operator";
      case "restore":
        return role === "administrator" || role === "restore_operator";
      case "admin":
        return role === "administrator";
    }
    return false;
  };

  // table renders rows (objects) with columns [{title, value(row)}].
  HF.table = function (caption, columns, rows, empty) {
    if (!rows || rows.length === 0) {
      return HF.el("p", { class: "empty" }, empty);
    }
    const head = HF.el("tr", {}, ...columns.map((c) => HF.el("th", { scope: "col" }, c.title)));
    const body = rows.map((r) => HF.el("tr", {}, ...columns.map((c) => HF.el("td", {}, c.value(r)))));
    return HF.el("table", {}, HF.el("caption", {}, caption), HF.el("thead", {}, head), HF.el("tbody", {}, ...body));
  };

  HF.section = function (title, ...children) {
    return HF.el("section", { "aria-label": title }, HF.el("h2", {}, title), ...children);
  };

  HF.status = function (text, isError) {
    const s = document.getElementById("status");
    s.textContent = text || "";
    s.className = isError ? "error" : "";
  };

  HF.fail = function (err) {
    HF.status(err && err.message ? err.message : String(err), true);
  };

  // shell fills the page frame for the signed-in user and returns GET /me;
  // without a login session it goes to the login page (and returns null).
  HF.shell = async function () {
    let me;
    try {
      me = await HF.api("GET", "/me");
    } catch (err) {
      if (err.status === 401) {
        location.replace("/console/login?next=" + encodeURIComponent(location.pathname));
        return null;
      }
      throw err;
    }
    HF.csrf = me.csrf_token || "";
    HF.me = me;
    document.getElementById("who").textContent = me.name + " · " + HF.roleName(me.role);
    if (me.role === "administrator") {
      document.querySelectorAll("[data-admin]").forEach((e) => e.removeAttribute("hidden"));
    }
    const page = document.body.dataset.page;
    document.querySelectorAll("nav a[data-nav]").forEach((a) => {
      if (a.dataset.nav === page) {
        a.setAttribute("aria-current", "page");
      }
    });
    document.getElementById("change-password").addEventListener("click", HF.togglePasswordForm);
    document.getElementById("logout").addEventListener("click", async () => {
      try {
        await HF.api("POST", "/logout");
      } catch (err) {
        if (err.status !== 401) {
          HF.fail(err);
          return;
        }
      }
      location.replace("/console/login");
    });
    return me;
  };

  // togglePasswordForm shows (or hides) the header's "Change password"
  // form: PUT /api/v1/me/password with the current password; the user's
  // other login sessions end, this one goes on.
  HF.togglePasswordForm = function () {
    const panel = document.getElementById("password-panel");
    const opener = document.getElementById("change-password");
    if (!panel.hidden) {
      panel.hidden = true;
      panel.replaceChildren();
      opener.setAttribute("aria-expanded", "false");
      return;
    }
    const input = (id, auto) => HF.el("input", { id: id, type: "password", autocomplete: auto, required: true });
    const cur = input("pw-current", "current-password");
    const next = input("pw-new", "new-password");
    const again = input("pw-again", "new-password");
    const done = HF.el("p", { id: "pw-done", role: "status" });
    const f = HF.form("password-form", "Change your password", [
      // For password managers: whose password this is.
      HF.el("input", { type: "text", name: "username", autocomplete: "username", value: HF.me.name, hidden: true, readonly: true }),
      HF.field("Current password", cur),
      HF.field("New password", next, "At least 12 characters."),
      HF.field("New password again", again),
    ], "Change password", async () => {
      done.textContent = "";
      if (next.value !== again.value) {
        throw new Error("The new passwords differ.");
      }
      await HF.api("PUT", "/me/password", { current: cur.value, new: next.value });
      cur.value = next.value = again.value = "";
      done.textContent = "Password changed; your other sessions have ended.";
    });
    panel.replaceChildren(f, done);
    panel.hidden = false;
    opener.setAttribute("aria-expanded", "true");
    cur.focus();
  };

  // ---- forms, buttons and one-time secrets (infrastructure.js,
  // users.js, notifications.js) ----

  // field is a labelled input; input needs an id.
  HF.field = function (label, input, hint) {
    return HF.el("div", { class: "field" }, HF.el("label", { for: input.id }, label), input,
      hint ? HF.el("p", { class: "hint" }, hint) : null);
  };

  // form is a form whose submit runs onSubmit(); an error it throws shows
  // in the form's alert box (the API's own message).
  HF.form = function (id, legend, fields, submit, onSubmit) {
    const err = HF.el("p", { id: id + "-error", class: "error", role: "alert", hidden: true });
    const f = HF.el("form", { id: id, class: "inline-form", novalidate: true },
      HF.el("fieldset", {}, HF.el("legend", {}, legend), ...fields),
      err, HF.el("button", { type: "submit", id: id + "-submit" }, submit));
    f.addEventListener("submit", async (ev) => {
      ev.preventDefault();
      err.hidden = true;
      const btn = f.querySelector("button[type=submit]");
      btn.disabled = true;
      try {
        await onSubmit();
      } catch (e) {
        err.textContent = e && e.message ? e.message : String(e);
        err.hidden = false;
      } finally {
        btn.disabled = false;
      }
    });
    return f;
  };

  // button runs handler on click (disabled meanwhile); errors go to the
  // page status.
  HF.button = function (label, attrs, handler) {
    const b = HF.el("button", Object.assign({ type: "button", class: "small" }, attrs), label);
    b.addEventListener("click", async () => {
      b.disabled = true;
      try {
        await handler();
      } catch (e) {
        HF.fail(e);
      } finally {
        b.disabled = false;
      }
    });
    return b;
  };

  // secret shows a value returned once (a token, a TOTP key) read-only
  // with a Copy button; it is in the page only until the next reload.
  HF.secret = function (id, label, value) {
    const input = HF.el("input", { id: id, type: "text", readonly: true, value: value, class: "secret", spellcheck: "false" });
    const copy = HF.el("button", { type: "button", class: "small secondary", "data-copy": id }, "Copy");
    copy.addEventListener("click", async () => {
      input.select();
      try {
        await navigator.clipboard.writeText(value);
        copy.textContent = "Copied";
      } catch (e) {
        copy.textContent = "Selected: press Ctrl+C";
      }
    });
    return HF.el("div", { class: "once", role: "status" }, HF.el("label", { for: id }, label), input, copy);
  };

  // select makes a select of options, [value, label] pairs.
  HF.select = function (id, options) {
    return HF.el("select", { id: id }, ...options.map(([v, l]) => HF.el("option", { value: v }, l)));
  };

  HF.roles = Object.entries(roleNames);

  HF.fmtBytes = function (n) {
    if (typeof n !== "number") {
      return "–";
    }
    const units = ["B", "KiB", "MiB", "GiB", "TiB", "PiB"];
    let i = 0;
    while (n >= 1024 && i < units.length - 1) {
      n /= 1024;
      i++;
    }
    return (i === 0 ? String(n) : n.toFixed(1)) + " " + units[i];
  };

  window.Holdfast = HF;
})();
