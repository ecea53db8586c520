// dashboard.js: the estate at a glance from GET /api/v1/dashboard — the
// last 24 h of sessions by result (counts and a per-hour chart), the VMs
// outside their RPO, repository capacity, agents, and the running sessions
// with their progress, polled every few seconds.
"use strict";
(async function () {
  const HF = window.Holdfast;
  const me = await HF.shell();
  if (!me) {
    return;
  }
  const POLL_MS = 3000;
  const SVG = "http://www.w3.org/2000/svg";
  // The states in the order the page lists them, with their chart class.
  const states = ["success", "warning", "failed", "cancelled", "running", "queued"];
  const stateNames = {
    success: "Success",
    warning: "Warning",
    failed: "Failed",
    cancelled: "Cancelled",
    running: "Running",
    queued: "Queued",
  };

  function fmtBytes(n) {
    if (n === undefined || n === null) {
      return "–";
    }
    const units = ["B", "KiB", "MiB", "GiB", "TiB", "PiB"];
    let v = Math.abs(n);
    let i = 0;
    while (v >= 1024 && i < units.length - 1) {
      v /= 1024;
      i++;
    }
    return (n < 0 ? "−" : "") + (i === 0 ? String(v) : v.toFixed(1)) + " " + units[i];
  }

  function fmtDuration(sec) {
    if (!sec && sec !== 0) {
      return "–";
    }
    const d = Math.floor(sec / 86400);
    const h = Math.floor((sec % 86400) / 3600);
    const m = Math.floor((sec % 3600) / 60);
    if (d > 0) {
      return d + " d " + h + " h";
    }
    if (h > 0) {
      return h + " h " + m + " min";
    }
    return m + " min";
  }

  function plural(n, word) {
    return n + " " + word + (n === 1 ? "" : "s");
  }

  function svg(tag, attrs, ...children) {
    const e = document.createElementNS(SVG, tag);
    for (const [k, v] of Object.entries(attrs)) {
      e.setAttribute(k, String(v));
    }
    e.append(...children);
    return e;
  }

  const content = document.getElementById("content");
  const box = {};
  function slot(id, title) {
    box[id] = HF.el("div", { id: id });
    return HF.section(title, box[id]);
  }
  content.append(
    HF.el("p", { id: "signed-in" }, "Signed in as ", HF.el("strong", {}, me.name), ", role ", HF.roleName(me.role), "."),
    slot("dash-sessions", "Sessions in the last 24 hours"),
    slot("dash-running", "Running sessions"),
    slot("dash-rpo", "VMs outside their RPO"),
    slot("dash-repositories", "Repositories"),
    slot("dash-agents", "Agents")
  );

  // sessions24h: counts by state and a stacked bar per UTC hour (SVG made
  // with DOM calls; its text alternative is the counts' summary, and every
  // bar has a title).
  function sessions24h(s) {
    const counts = HF.el(
      "ul",
      { class: "counts", id: "session-counts" },
      ...states.map((st) =>
        HF.el("li", { "data-state": st }, HF.el("span", { class: "swatch s-" + st }), stateNames[st] + ": ", HF.el("strong", {}, s.by_state[st] || 0))
      )
    );
    const hours = s.hours || [];
    let max = 1;
    for (const h of hours) {
      max = Math.max(max, states.reduce((n, st) => n + (h.by_state[st] || 0), 0));
    }
    const barW = 24;
    const height = 120;
    const pad = 16; // room for the first and last hour's label
    const chart = svg("svg", {
      class: "hours",
      role: "img",
      width: hours.length * barW + 2 * pad,
      height: height + 18,
      viewBox: "0 0 " + (hours.length * barW + 2 * pad) + " " + (height + 18),
      "aria-labelledby": "hours-title",
    });
    const total = states.reduce((n, st) => n + (s.by_state[st] || 0), 0);
    const summary =
      "Sessions started per hour, last 24 hours: " +
      total +
      " in all, " +
      states.map((st) => (s.by_state[st] || 0) + " " + stateNames[st].toLowerCase()).join(", ") +
      ".";
    chart.append(
      svg("title", { id: "hours-title" }, summary),
      svg("line", { class: "axis", x1: pad, x2: pad + hours.length * barW, y1: height + 0.5, y2: height + 0.5 })
    );
    hours.forEach((h, i) => {
      let y = height;
      const when = new Date(h.start);
      const label = when.getHours().toString().padStart(2, "0") + ":00";
      const g = svg("g", {});
      const parts = [];
      for (const st of states) {
        const n = h.by_state[st] || 0;
        if (n === 0) {
          continue;
        }
        const bh = Math.max(1, Math.round((n / max) * height));
        y -= bh;
        g.append(svg("rect", { class: "s-" + st, x: pad + i * barW + 3, y: y, width: barW - 6, height: bh }));
        parts.push(n + " " + stateNames[st].toLowerCase());
      }
      g.prepend(svg("title", {}, label + ": " + (parts.length ? parts.join(", ") : "none")));
      if (i % 3 === 0) {
        g.append(svg("text", { x: pad + i * barW + barW / 2, y: height + 14, "text-anchor": "middle" }, label));
      }
      chart.append(g);
    });
    return [counts, HF.el("figure", { class: "chart" }, chart, HF.el("figcaption", { class: "hint" }, summary))];
  }

  function rpo(r) {
    if (r.violations.length === 0) {
      return [
        HF.el("p", { class: "empty" }, "Every VM of the " + plural(r.jobs_checked, "job") + " with an RPO has a good restore point within it."),
      ];
    }
    return [
      HF.el("p", {}, r.violations.length + " of " + r.vms_checked + " VMs in " + plural(r.jobs_checked, "job") + " with an RPO."),
      HF.table(
        "VMs without a good restore point within their RPO",
        [
          { title: "VM", value: (v) => v.vm },
          { title: "Job", value: (v) => v.job },
          { title: "Job enabled", value: (v) => (v.job_enabled ? "yes" : "no") },
          { title: "RPO", value: (v) => fmtDuration(v.rpo_seconds) + (v.rpo_source === "schedule" ? " (from schedule)" : "") },
          { title: "Newest good point", value: (v) => (v.last_point ? HF.fmtTime(v.last_point) : "none") },
          { title: "Age", value: (v) => (v.last_point ? fmtDuration(v.age_seconds) : "–") },
        ],
        r.violations,
        ""
      ),
    ];
  }

  function useMeter(r) {
    if (!r.known || !r.size_bytes) {
      return r.error ? "unknown: " + r.error : "unknown";
    }
    const pct = Math.round((100 * r.used_bytes) / r.size_bytes);
    return HF.el(
      "meter",
      { min: 0, max: r.size_bytes, value: r.used_bytes, high: 0.8 * r.size_bytes, optimum: 0, title: pct + " % used" },
      pct + " % used"
    );
  }

  function repositories(list) {
    return [
      HF.table(
        "Repository capacity",
        [
          { title: "Repository", value: (r) => r.name },
          { title: "Agent", value: (r) => (r.online ? "online" : "offline") },
          { title: "Size", value: (r) => (r.known ? fmtBytes(r.size_bytes) : "–") },
          { title: "Free", value: (r) => (r.known ? fmtBytes(r.free_bytes) : "–") },
          { title: "Used", value: useMeter },
          {
            title: "Growth in 7 days",
            value: (r) => (r.growth_since ? (r.growth_7d_bytes > 0 ? "+" : "") + fmtBytes(r.growth_7d_bytes) + " since " + r.growth_since : "–"),
          },
        ],
        list,
        "No repository agents have joined."
      ),
    ];
  }

  function agents(list) {
    return [
      HF.table(
        "Agents by role",
        [
          { title: "Role", value: (a) => a.role },
          { title: "Online", value: (a) => a.online },
          { title: "Offline", value: (a) => a.offline },
          { title: "Offline agents", value: (a) => (a.offline_names && a.offline_names.length ? a.offline_names.join(", ") : "–") },
        ],
        list,
        "No agents have joined."
      ),
    ];
  }

  function progress(s) {
    const p = s.progress;
    if (!p || !p.bytes_total) {
      return s.waiting || "–";
    }
    const pct = Math.floor((100 * p.bytes_done) / p.bytes_total);
    const text = pct + " % (" + fmtBytes(p.bytes_done) + " of " + fmtBytes(p.bytes_total) + ")";
    return HF.el(
      "span",
      { class: "progress" },
      HF.el("progress", { max: p.bytes_total, value: p.bytes_done, "aria-label": "Session " + s.id + " progress" }, text),
      " " + text
    );
  }

  function running(list) {
    const rows = HF.table(
      "Queued and running sessions",
      [
        { title: "Session", value: (s) => HF.el("a", { href: "/console/sessions?id=" + s.id }, "#" + s.id) },
        { title: "Job", value: (s) => s.job_name || "–" },
        { title: "Kind", value: (s) => s.kind },
        { title: "State", value: (s) => s.state },
        { title: "Started", value: (s) => HF.fmtTime(s.started) },
        { title: "Progress", value: progress },
        { title: "Rate", value: (s) => (s.progress && s.progress.bytes_per_second ? fmtBytes(s.progress.bytes_per_second) + "/s" : "–") },
        {
          title: "Tasks",
          value: (s) =>
            s.progress
              ? Object.entries(s.progress.tasks_by_state)
                  .map(([k, n]) => n + " " + k)
                  .join(", ")
              : "–",
        },
      ],
      list,
      "No session is running."
    );
    rows.id = "running-table";
    return [rows];
  }

  function render(d) {
    box["dash-sessions"].replaceChildren(...sessions24h(d.sessions));
    box["dash-running"].replaceChildren(...running(d.running || []));
    box["dash-rpo"].replaceChildren(...rpo(d.rpo));
    box["dash-repositories"].replaceChildren(...repositories(d.repositories || []));
    box["dash-agents"].replaceChildren(...agents(d.agents || []));
    HF.status("Updated " + HF.fmtTime(d.time) + "; refreshed every " + POLL_MS / 1000 + " s.");
  }

  // poll refreshes the page every POLL_MS while it is shown; a failed call
  // shows its error and is tried again at the next tick.
  async function poll() {
    try {
      if (!document.hidden) {
        render(await HF.api("GET", "/dashboard"));
      }
    } catch (err) {
      HF.fail(err);
      if (err.status === 401) {
        return;
      }
    }
    setTimeout(poll, POLL_MS);
  }
  render(await HF.api("GET", "/dashboard"));
  content.dataset.loaded = "true";
  setTimeout(poll, POLL_MS);
})().catch((err) => window.Holdfast.fail(err));
