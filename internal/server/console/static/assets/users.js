// users.js: the Users page (administrators; the API refuses others). The
// console users with their role, TOTP, last login and lock-out; add one
// (name, role, password), remove one, set a new password, give a new
// TOTP key — its QR code (rendered by the server), otpauth URI and secret
// shown once — or remove it.
"use strict";
(async function () {
  const HF = window.Holdfast;
  const el = HF.el;
  const me = await HF.shell();
  if (!me) {
    return;
  }
  const content = document.getElementById("content");
  if (me.role !== "administrator") {
    content.append(el("p", { class: "empty", id: "users-admin-only" }, "Only administrators manage console users."));
    return;
  }
  const listArea = el("div", { id: "user-list" });
  const out = el("div", { id: "user-out" });

  function userPath(u, suffix) {
    return "/users/" + encodeURIComponent(u.name) + (suffix || "");
  }

  // passwordForm asks for u's new password in the row.
  function passwordForm(u, cell) {
    const id = "pw-" + u.name;
    const pw = el("input", { id: id, type: "password", autocomplete: "new-password", minlength: "12" });
    const f = HF.form("pwform-" + u.name, "New password for " + u.name, [HF.field("Password (12 characters or more)", pw)],
      "Set password", async () => {
        await HF.api("PUT", userPath(u, "/password"), { password: pw.value });
        HF.status("Password of " + u.name + " set; its sessions ended.");
        await load();
      });
    cell.append(f);
    pw.focus();
  }

  function actions(u) {
    const cell = el("div", { class: "actions" });
    cell.append(HF.button("Reset password", { class: "small secondary", "data-action": "password",
      "aria-label": "Reset the password of " + u.name }, async () => {
      if (!cell.querySelector("form")) {
        passwordForm(u, cell);
      }
    }));
    if (u.totp) {
      cell.append(HF.button("Disable TOTP", { class: "small secondary", "data-action": "totp-off",
        "aria-label": "Disable TOTP of " + u.name }, async () => {
        await HF.api("DELETE", userPath(u, "/totp"));
        HF.status("TOTP of " + u.name + " removed.");
        out.replaceChildren();
        await load();
      }));
    } else {
      cell.append(HF.button("Enable TOTP", { class: "small secondary", "data-action": "totp-on",
        "aria-label": "Enable TOTP of " + u.name }, async () => {
        const key = await HF.api("POST", userPath(u, "/totp"));
        out.replaceChildren(HF.section("TOTP key of " + u.name,
          el("p", { class: "hint" }, "Shown once: scan the QR code with the user's authenticator app, or enter the secret by hand."),
          // The server renders the QR code (an SVG of squares); a data:
          // image runs no script whatever it holds.
          el("img", { id: "totp-qr", alt: "QR code of the otpauth URI", width: "192", height: "192",
            src: "data:image/svg+xml;base64," + btoa(key.qr_svg) }),
          HF.secret("totp-uri", "otpauth URI", key.url), HF.secret("totp-secret", "Secret (base32)", key.secret)));
        await load();
      }));
    }
    if (u.name !== me.name) {
      cell.append(HF.button("Remove", { class: "small danger", "data-action": "delete",
        "aria-label": "Remove user " + u.name }, async () => {
        await HF.api("DELETE", userPath(u));
        HF.status("User " + u.name + " removed.");
        await load();
      }));
    }
    return cell;
  }

  async function load() {
    const users = await HF.api("GET", "/users");
    const cols = [
      { title: "Name", value: (u) => u.name },
      { title: "Role", value: (u) => HF.roleName(u.role) },
      { title: "TOTP", value: (u) => (u.totp ? "yes" : "no") },
      { title: "Last login", value: (u) => HF.fmtTime(u.last_login) },
      { title: "Locked until", value: (u) => HF.fmtTime(u.locked_until) },
      { title: "Actions", value: actions },
    ];
    listArea.replaceChildren(HF.table("Users", cols, users, "No console users."));
    listArea.querySelectorAll("tbody tr").forEach((tr, i) => tr.setAttribute("data-user", users[i].name));
  }

  const name = el("input", { id: "user-name", type: "text", autocomplete: "off" });
  const role = HF.select("user-role", HF.roles);
  const pw = el("input", { id: "user-password", type: "password", autocomplete: "new-password" });
  const add = HF.form("user-form", "Add a user", [HF.field("Name", name), HF.field("Role", role),
    HF.field("Password", pw, "12 characters or more; stored as an argon2id hash only.")], "Add user", async () => {
    const u = await HF.api("POST", "/users", { name: name.value.trim(), role: role.value, password: pw.value });
    HF.status("User " + u.name + " added as " + HF.roleName(u.role) + ".");
    name.value = "";
    pw.value = "";
    await load();
  });
  content.append(out, HF.section("Users", listArea, add));
  await load();
  document.body.dataset.ready = "1";
})().catch((err) => window.Holdfast.fail(err));
