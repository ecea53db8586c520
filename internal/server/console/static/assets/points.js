// points.js: the Restore points page. Points (GET /api/v1/points, ?vm=)
// grouped per VM with their size, scan result and copies (the
// repositories holding the same point ID); for roles that may restore
// (administrator, restore operator): restore a disk to a path on a proxy
// (POST /api/v1/restores, what `holdfast restore --server` sends) and
// Instant VM Recovery (POST /api/v1/instant-recoveries). Running Instant
// VM Recovery sessions are listed with their exports; roles that may
// cancel sessions (administrator, backup operator) can stop them (POST
// /api/v1/sessions/{id}/cancel). Publish (POST /api/v1/publications, what
// `holdfast publish --server` sends) mounts a point's filesystems
// read-only on a proxy; running publications are listed with their proxy,
// mount directory and filesystems, and Unpublish cancels the session (the
// same roles as Stop).
"use strict";
(async function () {
  const HF = window.Holdfast;
  const el = HF.el;
  const POLL_MS = 2000;

  const me = await HF.shell();
  if (!me) {
    return;
  }
  const content = document.getElementById("content");
  const params = new URLSearchParams(location.search);
  const panel = el("section", { id: "action-panel", "aria-live": "polite", hidden: true });

  function sessionLink(id) {
    return el("a", { href: "/console/sessions?id=" + encodeURIComponent(id) }, "session " + id);
  }

  function disksOf(p) {
    return Array.isArray(p.disks) ? p.disks : [];
  }

  function scanText(p) {
    if (!p.scan) {
      return "not scanned";
    }
    return p.scan.result + (p.scan.findings ? " (" + p.scan.findings + " findings)" : "") + ", " + p.scan.engine;
  }

  function field(id, label, input, hint) {
    return el("div", { class: "field" }, el("label", { for: id }, label), input, hint ? el("p", { class: "hint" }, hint) : null);
  }

  function showPanel(title, ...children) {
    panel.replaceChildren(el("h2", {}, title), ...children);
    panel.hidden = false;
    const first = panel.querySelector("input, select");
    if (first) {
      first.focus();
    }
  }

  // waitSession polls a session until it ends, writing its state to out.
  async function waitSession(id, out) {
    for (;;) {
      const se = await HF.api("GET", "/sessions/" + id);
      out.replaceChildren("Restore ", sessionLink(id), ": " + se.state);
      if (["success", "warning", "failed", "cancelled"].includes(se.state)) {
        const t = (se.tasks || []).find((x) => x.error);
        const why = (se.result && se.result.error) || (t && t.error);
        if (why && se.state !== "success") {
          out.append(": " + why);
        }
        out.className = se.state === "success" ? "done" : "error";
        out.dataset.state = se.state;
        return;
      }
      await new Promise((r) => setTimeout(r, POLL_MS));
    }
  }

  function restoreForm(p) {
    const disk = el("select", { id: "restore-disk", name: "disk" });
    for (const d of disksOf(p)) {
      disk.append(el("option", { value: d.index }, "disk " + d.index + " (" + HF.fmtBytes(d.size) + ", " + (d.location || "–") + ")"));
    }
    const target = el("input", { id: "restore-target", name: "target", type: "text", required: true, autocomplete: "off",
      placeholder: "/srv/restores/vm1-disk0.img" });
    const force = el("input", { id: "restore-force", name: "force", type: "checkbox" });
    const out = el("p", { id: "restore-result", role: "status" });
    const submit = el("button", { type: "submit", id: "restore-submit" }, "Restore");
    const form = el(
      "form",
      { id: "restore-form" },
      el("p", {}, "Point " + p.id + " of " + p.vm + ", " + HF.fmtTime(p.time)),
      field("restore-disk", "Disk", disk),
      field("restore-target", "Target path on a proxy", target,
        "An absolute path beneath one of a proxy's --restore-root directories; a .qcow2 name is written as qcow2, else raw."),
      el("div", { class: "check" }, force, el("label", { for: "restore-force" }, "Replace an existing file")),
      submit,
      out
    );
    onSubmit(form, submit, out, "Restore", async () => {
      delete out.dataset.state;
      out.textContent = "Waiting for a proxy to take the restore…";
      const se = await HF.api("POST", "/restores", {
        point: p.id,
        disk: Number(disk.value),
        target: target.value.trim(),
        force: force.checked,
      });
      await waitSession(se.id, out);
    });
    showPanel("Restore a disk", form);
  }

  // onSubmit runs action when form is submitted: submit is disabled
  // meanwhile, out cleared first and, when action throws, shows
  // "WHAT refused: " and the API's message.
  function onSubmit(form, submit, out, what, action) {
    form.addEventListener("submit", async (ev) => {
      ev.preventDefault();
      submit.disabled = true;
      out.className = "";
      try {
        await action();
      } catch (err) {
        out.className = "error";
        out.textContent = what + " refused: " + err.message;
      } finally {
        submit.disabled = false;
      }
    });
  }

  function credentialBox(id, label, text) {
    return field(id, label, el("textarea", { id: id, readonly: true, rows: 4, cols: 64, spellcheck: "false" }, text));
  }

  function instantForm(p) {
    const nbd = el("input", { id: "ir-nbd", name: "nbd", type: "text", required: true, placeholder: "0.0.0.0:10809" });
    const allow = el("input", { id: "ir-allow", name: "allow", type: "text", placeholder: "192.0.2.10, 192.0.2.11" });
    const out = el("div", { id: "ir-result", role: "status" });
    const submit = el("button", { type: "submit", id: "ir-submit" }, "Start instant recovery");
    const form = el(
      "form",
      { id: "ir-form" },
      el("p", {}, "Point " + p.id + " of " + p.vm + ", " + HF.fmtTime(p.time)),
      field("ir-nbd", "NBD listen address on the mount server", nbd, "host:port the proxy serves the disks on (TLS)."),
      field("ir-allow", "Allowed clients", allow, "Addresses or CIDRs, comma-separated; empty: only your address."),
      submit,
      out
    );
    onSubmit(form, submit, out, "Instant recovery", async () => {
      out.textContent = "Starting…";
      const list = allow.value.split(",").map((s) => s.trim()).filter((s) => s !== "");
      const m = await HF.api("POST", "/instant-recoveries", { point: p.id, nbd: nbd.value.trim(), allow: list });
      out.replaceChildren(el("p", {}, "Instant recovery ", sessionLink(m.id), " started; its exports show below once they answer."));
      if (m.nbd_tls) {
        out.append(
          el("p", { class: "hint" }, "The NBD client credentials are shown this once; save them now (QEMU tls-creds-x509, endpoint=client)."),
          credentialBox("ir-cert", "client-cert.pem", m.nbd_tls.client_cert),
          credentialBox("ir-key", "client-key.pem", m.nbd_tls.client_key),
          credentialBox("ir-ca", "Client CA (append to ca-cert.pem)", m.nbd_tls.client_ca)
        );
      }
      await loadRunning();
    });
    showPanel("Instant VM Recovery", form);
  }

  function publishForm(p) {
    const dir = el("input", { id: "pub-dir", name: "mount_dir", type: "text", autocomplete: "off",
      placeholder: "/mnt/holdfast/vm1" });
    const out = el("div", { id: "pub-result", role: "status" });
    const submit = el("button", { type: "submit", id: "pub-submit" }, "Publish");
    const form = el(
      "form",
      { id: "pub-form" },
      el("p", {}, "Point " + p.id + " of " + p.vm + ", " + HF.fmtTime(p.time)),
      field("pub-dir", "Mount directory on the mount server", dir,
        "An absolute path on the proxy; empty: the proxy's default. Filesystems are mounted read-only beneath it."),
      submit,
      out
    );
    onSubmit(form, submit, out, "Publish", async () => {
      out.textContent = "Publishing…";
      const m = await HF.api("POST", "/publications", { point: p.id, mount_dir: dir.value.trim() });
      out.replaceChildren(el("p", {}, "Publication ", sessionLink(m.id), " started; its mounts show below once the proxy has them."));
      await loadRunning();
    });
    showPanel("Publish a restore point", form);
  }

  async function unpublish(id) {
    try {
      await HF.api("POST", "/sessions/" + id + "/cancel");
      HF.status("Publication session " + id + " unpublished.");
    } catch (err) {
      HF.fail(err);
    }
    await loadRunning();
  }

  async function stop(id, force) {
    try {
      await HF.api("POST", "/sessions/" + id + "/cancel" + (force ? "?force=true" : ""));
      HF.status("Instant recovery session " + id + " stopped.");
    } catch (err) {
      if (err.code === "in_use" && !force) {
        const again = el("button", { type: "button", id: "stop-force" }, "Stop anyway");
        again.addEventListener("click", () => stop(id, true));
        showPanel("Stop instant recovery", el("p", { class: "error" }, err.message), again);
        return;
      }
      HF.fail(err);
    }
    await loadRunning();
  }

  const running = el("div", { id: "running-ir" });
  const published = el("div", { id: "running-pub" });
  let runningTimer = 0;

  function mountsText(s) {
    const pub = s.result && s.result.serving;
    if (!pub) {
      return "mounting";
    }
    const fs = (pub.filesystems || []).filter((f) => f.mountpoint).map((f) => f.mountpoint + " (" + (f.fstype || "?") + ")");
    return [fs.join("; ") || "no filesystem mounted"].concat(pub.problems || []).join("; ");
  }

  function renderPublished(ss) {
    const columns = [
      { title: "Session", value: (s) => sessionLink(s.id) },
      { title: "VM", value: (s) => (s.result && s.result.vm) || "–" },
      { title: "Point", value: (s) => (s.result && s.result.point) || "–" },
      { title: "Proxy", value: (s) => (s.result && s.result.proxy) || "–" },
      { title: "Mount directory", value: (s) => (s.result && s.result.serving && s.result.serving.mount_dir) || "–" },
      { title: "Filesystems", value: mountsText },
    ];
    if (HF.may("backup")) {
      columns.push({
        title: "Actions",
        value: (s) => {
          const b = el("button", { type: "button", "data-unpublish": s.id }, "Unpublish");
          b.addEventListener("click", () => unpublish(s.id));
          return b;
        },
      });
    }
    published.replaceChildren(HF.table("Published points", columns, ss, "No point is published."));
  }

  // loadRunning lists the running Instant VM Recovery and publish
  // sessions, again every 2 s while one is not serving yet.
  async function loadRunning() {
    clearTimeout(runningTimer);
    const all = await HF.api("GET", "/sessions?state=running&limit=100");
    const pubs = all.filter((s) => s.kind === "publish");
    renderPublished(pubs);
    const ss = all.filter((s) => s.kind === "instant-recovery");
    const columns = [
      { title: "Session", value: (s) => sessionLink(s.id) },
      { title: "VM", value: (s) => (s.result && s.result.vm) || "–" },
      { title: "Point", value: (s) => (s.result && s.result.point) || "–" },
      { title: "Proxy", value: (s) => (s.result && s.result.proxy) || "–" },
      {
        title: "Exports",
        value: (s) => {
          const disks = (s.result && s.result.serving && s.result.serving.disks) || [];
          return disks.map((d) => [d.nbd_url, d.nfs].filter(Boolean).join(" ")).join("; ") || "starting";
        },
      },
    ];
    if (HF.may("backup")) {
      columns.push({
        title: "Actions",
        value: (s) => {
          const b = el("button", { type: "button", "data-stop": s.id }, "Stop");
          b.addEventListener("click", () => stop(s.id, false));
          return b;
        },
      });
    }
    running.replaceChildren(HF.table("Running instant recoveries", columns, ss, "No instant recovery is running."));
    if (ss.concat(pubs).some((s) => !(s.result && s.result.serving))) {
      runningTimer = setTimeout(() => loadRunning().catch(HF.fail), POLL_MS);
    }
  }

  function actions(p) {
    const r = el("button", { type: "button", class: "small", "data-restore": p.id }, "Restore disk…");
    r.addEventListener("click", () => restoreForm(p));
    const ir = el("button", { type: "button", class: "small", "data-instant": p.id }, "Instant recovery…");
    ir.addEventListener("click", () => instantForm(p));
    const pub = el("button", { type: "button", class: "small", "data-publish": p.id }, "Publish…");
    pub.addEventListener("click", () => publishForm(p));
    return el("span", { class: "actions" }, r, " ", ir, " ", pub);
  }

  // Filter by VM: a plain GET form, so the URL is the filter.
  const vmInput = el("input", { id: "filter-vm", name: "vm", type: "text", value: params.get("vm") || "" });
  content.append(
    el("form", { id: "point-filter", class: "filter", method: "get", action: "/console/points" },
      el("label", { for: "filter-vm" }, "VM"), vmInput, el("button", { type: "submit" }, "Show")),
    panel
  );

  const q = new URLSearchParams({ limit: "1000" });
  if (params.get("vm")) {
    q.set("vm", params.get("vm"));
  }
  const rows = await HF.api("GET", "/points?" + q.toString());
  // One row per point ID; its copies are the repositories that hold it.
  const byID = new Map();
  for (const p of rows) {
    const seen = byID.get(p.id);
    if (seen) {
      seen.repositories.push(p.repository);
    } else {
      byID.set(p.id, Object.assign({}, p, { repositories: [p.repository] }));
    }
  }
  const byVM = new Map();
  for (const p of byID.values()) {
    if (!byVM.has(p.vm)) {
      byVM.set(p.vm, []);
    }
    byVM.get(p.vm).push(p);
  }
  const columns = [
    { title: "Time", value: (p) => HF.fmtTime(p.time) },
    { title: "Job", value: (p) => p.job || "–" },
    { title: "Disks", value: (p) => disksOf(p).length },
    { title: "Size", value: (p) => HF.fmtBytes(p.bytes_total) },
    { title: "Stored", value: (p) => HF.fmtBytes(p.bytes_stored) },
    { title: "Scan", value: scanText },
    { title: "Copies", value: (p) => p.repositories.length + " (" + p.repositories.join(", ") + ")" },
    { title: "ID", value: (p) => el("code", {}, p.id) },
  ];
  if (HF.may("restore")) {
    columns.push({ title: "Actions", value: actions });
  }
  if (byVM.size === 0) {
    content.append(el("p", { class: "empty" }, "No restore points yet."));
  }
  for (const vm of [...byVM.keys()].sort()) {
    content.append(HF.section(vm, HF.table("Restore points of " + vm, columns, byVM.get(vm), "")));
  }
  content.append(HF.section("Running instant recoveries", running));
  content.append(HF.section("Published points", published));
  await loadRunning();
})().catch((err) => window.Holdfast.fail(err));
