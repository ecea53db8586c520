// sessions.js: the Sessions page. /console/sessions lists sessions
// (GET /api/v1/sessions, filtered by ?job= and ?state=);
// /console/sessions?id=N shows one session (GET /api/v1/sessions/N) with
// its per-VM, per-disk progress, each task's log and the failure reason,
// polled every 2 s until the session ends; roles that may run jobs can
// cancel a running session and retry an ended one's failed VMs.
"use strict";
(async function () {
  const HF = window.Holdfast;
  const el = HF.el;
  const POLL_MS = 2000;
  const STATES = ["queued", "running", "success", "warning", "failed", "cancelled"];
  const terminal = (state) => ["success", "warning", "failed", "cancelled"].includes(state);

  const me = await HF.shell();
  if (!me) {
    return;
  }
  const content = document.getElementById("content");
  const params = new URLSearchParams(location.search);

  function sessionLink(id) {
    return el("a", { href: "/console/sessions?id=" + encodeURIComponent(id) }, String(id));
  }

  function stateBadge(state) {
    return el("span", { class: "state state-" + state }, state);
  }

  // ---- the list ----

  async function filterForm() {
    const jobs = await HF.api("GET", "/jobs");
    const job = el("select", { id: "filter-job", name: "job" }, el("option", { value: "" }, "All jobs"));
    for (const j of jobs) {
      job.append(el("option", { value: j.name, selected: j.name === params.get("job") }, j.name));
    }
    const state = el("select", { id: "filter-state", name: "state" }, el("option", { value: "" }, "Any result"));
    for (const s of STATES) {
      state.append(el("option", { value: s, selected: s === params.get("state") }, s));
    }
    // A plain GET form: the filter is the page's URL, so it can be bookmarked.
    return el(
      "form",
      { id: "session-filter", class: "filter", method: "get", action: "/console/sessions" },
      el("label", { for: "filter-job" }, "Job"),
      job,
      el("label", { for: "filter-state" }, "Result"),
      state,
      el("button", { type: "submit" }, "Show")
    );
  }

  async function showList() {
    content.append(await filterForm());
    const holder = el("div", { id: "session-list" });
    content.append(HF.section("Sessions", holder));
    const q = new URLSearchParams({ limit: "100" });
    for (const k of ["job", "state"]) {
      if (params.get(k)) {
        q.set(k, params.get(k));
      }
    }
    const columns = [
      { title: "Session", value: (s) => sessionLink(s.id) },
      { title: "Job", value: (s) => s.job_name || "–" },
      { title: "Kind", value: (s) => s.kind },
      { title: "State", value: (s) => stateBadge(s.state) },
      { title: "Started", value: (s) => HF.fmtTime(s.started) },
      { title: "Ended", value: (s) => HF.fmtTime(s.ended) },
    ];
    for (;;) {
      const rows = await HF.api("GET", "/sessions?" + q.toString());
      holder.replaceChildren(HF.table("Sessions", columns, rows, "No sessions match."));
      if (rows.every((s) => terminal(s.state))) {
        return;
      }
      await new Promise((r) => setTimeout(r, POLL_MS));
    }
  }

  // ---- one session ----

  function seconds(from, to) {
    if (!from) {
      return 0;
    }
    return Math.max(0, ((to ? new Date(to) : new Date()) - new Date(from)) / 1000);
  }

  function rate(t) {
    const s = seconds(t.started, t.ended);
    return s > 0 && t.bytes_done > 0 ? HF.fmtBytes(Math.round(t.bytes_done / s)) + "/s" : "–";
  }

  // bottleneck names the stage that took the largest share of a task's time.
  function bottleneck(stages) {
    const total = stages.reduce((a, s) => a + s[1], 0);
    if (total <= 0) {
      return "–";
    }
    const top = stages.reduce((a, s) => (s[1] > a[1] ? s : a));
    return top[0] + " " + Math.round((100 * top[1]) / total) + "%";
  }

  function taskBottleneck(t) {
    return bottleneck([
      ["source", t.source_ns],
      ["proxy", t.proxy_ns],
      ["network", t.network_ns],
      ["target", t.target_ns],
    ]);
  }

  function progressCell(t) {
    if (!t.bytes_total) {
      return t.state === "queued" ? "waiting" : "–";
    }
    const pct = Math.min(100, Math.floor((100 * t.bytes_done) / t.bytes_total));
    return el(
      "span",
      { class: "progress" },
      el("progress", { max: t.bytes_total, value: t.bytes_done, "aria-label": t.vm + " disk " + t.disk }),
      " " + HF.fmtBytes(t.bytes_done) + " of " + HF.fmtBytes(t.bytes_total) + " (" + pct + "%)"
    );
  }

  // taskLog is what the API recorded of a task, oldest first, and the
  // errors of its VM's earlier runs (the session result's history).
  function taskLog(t, vm) {
    const lines = [];
    lines.push([t.queued, "queued"]);
    for (const h of (vm && vm.history) || []) {
      lines.push([null, "earlier run: " + h]);
    }
    if (t.started) {
      lines.push([
        t.started,
        "attempt " + t.attempt + " started on proxy " + (t.proxy || "–") + " (transport " + (t.transport || "–") +
          ", repository " + (t.repository || "–") + ")",
      ]);
    }
    if (t.bytes_total) {
      lines.push([
        null,
        "read " + HF.fmtBytes(t.bytes_read) + ", sent " + HF.fmtBytes(t.bytes_transferred) + ", stored " +
          HF.fmtBytes(t.bytes_written) + " of " + HF.fmtBytes(t.bytes_total),
      ]);
    }
    for (const w of t.warnings || []) {
      lines.push([null, "warning: " + w]);
    }
    if (t.error) {
      lines.push([null, (terminal(t.state) ? "error: " : "") + t.error]);
    }
    if (t.ended) {
      lines.push([t.ended, "ended: " + t.state]);
    }
    return el(
      "ol",
      { class: "log" },
      ...lines.map(([at, text]) => el("li", {}, at ? el("time", { datetime: at }, HF.fmtTime(at)) : null, at ? " " : null, text))
    );
  }

  // failure is the reason a session failed: the result's error, else the
  // errors of its failed VMs, else its failed tasks' errors.
  function failure(se, res) {
    if (res.error) {
      return res.error;
    }
    const errs = [];
    for (const vm of res.vms || []) {
      for (const e of vm.errors || []) {
        errs.push(vm.name + ": " + e);
      }
    }
    if (errs.length === 0) {
      for (const t of se.tasks || []) {
        if (t.state === "failed" && t.error) {
          errs.push(t.vm + " disk " + t.disk + ": " + t.error);
        }
      }
    }
    return errs.join("; ");
  }

  // pct is a share (0 to 1) as a percentage.
  const pct = (share) => Math.round(100 * (share || 0)) + "%";

  function summary(se, res) {
    const items = [
      ["Job", se.job_name || "–"],
      ["Kind", se.kind],
      ["State", stateBadge(se.state)],
      ["Started", HF.fmtTime(se.started)],
      ["Ended", HF.fmtTime(se.ended)],
      ["Duration", Math.round(seconds(se.started, se.ended)) + " s"],
    ];
    if (se.waiting) {
      items.push(["Waiting", se.waiting]);
    }
    if (res.bottleneck && res.bottleneck.limit) {
      const b = res.bottleneck;
      items.push([
        "Bottleneck",
        b.limit + " (source " + pct(b.source) + ", proxy " + pct(b.proxy) + ", network " + pct(b.network) +
          ", target " + pct(b.target) + ")",
      ]);
    }
    const dl = el("dl", { class: "facts", id: "session-facts" });
    for (const [k, v] of items) {
      dl.append(el("dt", {}, k), el("dd", {}, v));
    }
    const parts = [dl];
    const why = se.state === "failed" || se.state === "cancelled" || se.state === "warning" ? failure(se, res) : "";
    if (why) {
      parts.push(el("p", { id: "session-failure", class: "error", role: "alert" }, "Failure: " + why));
    }
    return parts;
  }

  function vmTable(res) {
    return HF.table(
      "Virtual machines",
      [
        { title: "VM", value: (v) => v.name },
        { title: "Status", value: (v) => stateBadge(v.status) },
        { title: "Restore point", value: (v) => v.point || "–" },
        { title: "Retries", value: (v) => v.retries || 0 },
        { title: "Errors", value: (v) => (v.errors || []).join("; ") || "–" },
        { title: "Warnings", value: (v) => (v.warnings || []).join("; ") || "–" },
      ],
      res.vms,
      "No VM results yet."
    );
  }

  function taskTable(se) {
    return HF.table(
      "Disks",
      [
        { title: "VM", value: (t) => t.vm },
        { title: "Disk", value: (t) => t.disk },
        { title: "State", value: (t) => stateBadge(t.state) },
        { title: "Progress", value: progressCell },
        { title: "Rate", value: rate },
        { title: "Transport", value: (t) => t.transport || "–" },
        { title: "Proxy", value: (t) => t.proxy || "–" },
        { title: "Bottleneck", value: taskBottleneck },
        { title: "Attempt", value: (t) => t.attempt },
        { title: "Error", value: (t) => t.error || "–" },
      ],
      se.tasks,
      "No tasks yet."
    );
  }

  async function cancel(id) {
    try {
      await HF.api("POST", "/sessions/" + encodeURIComponent(id) + "/cancel");
      HF.status("Session " + id + " cancelled.");
    } catch (err) {
      HF.fail(err);
    }
  }

  // retry runs the session's job again for its failed VMs (POST
  // /api/v1/sessions/{id}/retry) and opens the new session.
  async function retry(id) {
    try {
      const se = await HF.api("POST", "/sessions/" + encodeURIComponent(id) + "/retry");
      location.assign("/console/sessions?id=" + encodeURIComponent(se.id));
    } catch (err) {
      HF.fail(err);
    }
  }

  function render(id, se, open) {
    const res = se.result && typeof se.result === "object" ? se.result : {};
    const vmByName = {};
    for (const v of res.vms || []) {
      vmByName[v.name] = v;
    }
    const head = HF.section("Session " + se.id, ...summary(se, res));
    if (se.state === "running" && HF.may("backup")) {
      const b = el("button", { type: "button", id: "session-cancel" }, "Cancel session");
      b.addEventListener("click", () => cancel(id));
      head.append(b);
    }
    const failedVMs = (res.vms || []).filter((v) => v.status === "failed").map((v) => v.name);
    if (se.kind === "backup" && terminal(se.state) && failedVMs.length > 0 && HF.may("backup")) {
      const b = el("button", { type: "button", id: "session-retry" }, "Retry failed VMs (" + failedVMs.join(", ") + ")");
      b.addEventListener("click", () => retry(id));
      head.append(b);
    }
    const logs = el("div", { id: "task-logs" });
    for (const t of se.tasks || []) {
      const d = el(
        "details",
        { "data-task": t.id, open: open.has(String(t.id)) },
        el("summary", {}, t.vm + " disk " + t.disk + " (" + t.state + ")"),
        taskLog(t, vmByName[t.vm])
      );
      d.addEventListener("toggle", () => (d.open ? open.add(String(t.id)) : open.delete(String(t.id))));
      logs.append(d);
    }
    const back = el("p", {}, el("a", { href: "/console/sessions" }, "All sessions"));
    const parts = [back, head, HF.section("Disks", taskTable(se))];
    if (res.vms && res.vms.length > 0) {
      parts.push(HF.section("Virtual machines", vmTable(res)));
    }
    parts.push(HF.section("Task logs", logs));
    content.replaceChildren(...parts);
  }

  async function showSession(id) {
    document.title = "Session " + id + " · Holdfast";
    const open = new Set();
    for (;;) {
      const se = await HF.api("GET", "/sessions/" + encodeURIComponent(id));
      render(id, se, open);
      if (terminal(se.state)) {
        document.body.dataset.sessionDone = se.state;
        return;
      }
      await new Promise((r) => setTimeout(r, POLL_MS));
    }
  }

  if (params.get("id")) {
    await showSession(params.get("id"));
  } else {
    await showList();
  }
})().catch((err) => window.Holdfast.fail(err));
